"""The quantops services: registry, executor, state and gateway, plus the CLI that runs them."""
