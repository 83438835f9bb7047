"""Liveness, readiness and metrics of the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any, Literal

from litestar import MediaType, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.forward import bus_of
from services.gateway.routes.conventions import PUBLIC
from shared import __version__
from shared.bus import Bus
from shared.contracts.base import Empty, HealthReply
from shared.contracts.health import Liveness, Readiness, ServiceReadiness
from shared.errors import QuantopsError
from shared.subjects import Service, health

BACKENDS = (Service.STATE, Service.REGISTRY, Service.EXECUTOR)
#: Prometheus' text format, without the charset Litestar appends to every text/* type itself.
METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
#: This process: the gateway row of /readyz answers for the replica that served it.
_STARTED = time.monotonic()
_INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


@get("/healthz", opt=PUBLIC, tags=["health"], summary="The process is alive")
async def healthz() -> Liveness:
    return Liveness(status="ok")


async def _probe(bus: Bus, service: Service) -> ServiceReadiness:
    try:
        reply = await bus.request(health(service), Empty(), HealthReply, timeout_s=2.0)
    except QuantopsError as e:
        return ServiceReadiness(ok=False, status="down", detail=e.message)
    return ServiceReadiness(ok=reply.status == "ok", status=reply.status, health=reply)


@get("/readyz", opt=PUBLIC, tags=["health"],
     summary="200 only when NATS and every service answer")
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    bus = bus_of(request)
    nats_ok = bus.nc.is_connected
    probes = await asyncio.gather(*(_probe(bus, s) for s in BACKENDS))
    services = {str(s): p for s, p in zip(BACKENDS, probes, strict=True)}
    status: Literal["ok", "degraded"] = "ok" if nats_ok else "degraded"
    services["gateway"] = ServiceReadiness(ok=nats_ok, status=status, health=HealthReply(
        service=str(Service.GATEWAY), version=__version__, status=status,
        uptime_s=round(time.monotonic() - _STARTED, 3), instance=_INSTANCE))
    ready = nats_ok and all(p.ok for p in services.values())
    return Response(Readiness(ready=ready, nats=nats_ok, services=services),
                    status_code=200 if ready else 503)


@get("/metrics", opt=PUBLIC, tags=["health"], media_type=MediaType.TEXT,
     include_in_schema=False)
async def metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=METRICS_MEDIA_TYPE)


ROUTES = [healthz, readyz, metrics]
