"""The gateway's liveness and readiness answers (``GET /healthz``, ``GET /readyz``)."""

from __future__ import annotations

from shared.contracts.base import HealthReply, Message


class Liveness(Message):
    status: str


class ServiceReadiness(Message):
    ok: bool
    status: str
    detail: str = ""
    health: HealthReply | None = None


class Readiness(Message):
    """``GET /readyz``: NATS and each service (state, registry, executor, gateway)."""

    ready: bool
    nats: bool
    services: dict[str, ServiceReadiness]
