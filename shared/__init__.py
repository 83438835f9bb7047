"""Code every quantops service shares: contracts, subjects, bus, telemetry, settings, errors."""

__version__ = "0.1.0"
