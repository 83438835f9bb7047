"""The HTTP front: authenticates, validates, translates calls into NATS requests and back."""
