"""Typed NATS clients of the quantops services, one module per service (over ``shared.bus``)."""
