"""The state service: versioned, concurrent-safe, durable JSON state over JetStream KV."""
