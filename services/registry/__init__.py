"""The model registry: versioned artifacts in the JetStream object store, a SQLite catalog."""
