"""``client.health``: liveness, readiness (each service's health) and the gateway's metrics."""

from __future__ import annotations

from shared.clients.http._calls import TT, Call, Resource, op
from shared.contracts.health import Liveness, Readiness, ServiceReadiness

__all__ = ["Health", "Liveness", "Readiness", "ServiceReadiness"]


class Health(Resource[TT]):
    @op
    def live(self) -> Call[Liveness]:
        return Call("GET", "/healthz", Liveness)

    @op
    def ready(self) -> Call[Readiness]:
        """Every service's status; answered (not raised) when some are down (HTTP 503)."""
        return Call("GET", "/readyz", Readiness, ok=frozenset({503}))

    @op
    def metrics(self) -> Call[bytes]:
        """The gateway's Prometheus exposition text."""
        return Call("GET", "/metrics", bytes)
