"""The gateway's liveness and readiness answers (``GET /healthz``, ``GET /readyz``)."""

from __future__ import annotations

from shared.contracts.base import HealthReply, Message


class Liveness(Message, frozen=True):
    status: str


class ServiceReadiness(Message, frozen=True):
    ok: bool
    status: str
    detail: str = ""
    health: HealthReply | None = None


class Readiness(Message, frozen=True):
    """``GET /readyz``: NATS and each service (state, registry, executor, gateway)."""

    ready: bool
    nats: bool
    services: dict[str, ServiceReadiness]
