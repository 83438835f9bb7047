"""Helpers of the gateway tests: a real in-process gateway and users with keys (the fixtures in
conftest.py build on them).
"""

from __future__ import annotations

import contextlib
import io
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery

from services.gateway import app as app_module
from services.gateway.forward import forward
from services.gateway.service import GatewayApp
from shared.bus import Bus, connect_nats
from shared.contracts.base import Empty
from shared.natsserver import free_port
from shared.settings import Settings
from tests.gateway_auth import admin_key

# Generous for the anonymous bucket: every test here calls from 127.0.0.1.
RELAXED = {"QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_PER_S": "10000",
           "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_BURST": "10000"}


#: Settings of each auth store; replicas sharing the KV store share a signing secret.
KV_SECRET = "test-signing-secret-shared-by-replicas-0123456789"


STORES: dict[str, dict[str, str]] = {
    "sqlite": {},
    "kv": {"QUANTOPS_GATEWAY_AUTH_STORE": "kv", "QUANTOPS_GATEWAY_JWT_SECRET": KV_SECRET},
}


@get("/v1/probe/{subject:str}", opt={"role": "viewer"}, include_in_schema=False)
async def probe(request: Request[Any, Any, Any], subject: FromPath[str],
                timeout_s: FromQuery[float] = 1.0) -> Response[Any]:
    """A forwarded route for tests: to any subject, with a chosen timeout (503/504, headers)."""
    return await forward(request, subject, Empty(), timeout_s=timeout_s)


#: Added to the gateway's route modules in these tests only.
PROBE_ROUTES = types.SimpleNamespace(ROUTES=[probe])


@dataclass
class Gateway:
    url: str
    nats_url: str
    data_dir: Path
    service: GatewayApp
    admin_key: str
    stdout: str
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key of a user of that role
    store: str = "sqlite"
    nats_dir: Path | None = None  # the nats-server's own directory (JetStream files under it)

    def signing_key(self) -> str:
        """The JWT signing key: configured, or the one generated into the data dir."""
        configured = self.service.settings.gateway.jwt_secret.reveal()
        return configured or (self.data_dir / "gateway" / "jwt-secret").read_text().strip()

    def client(self, key: str | None = None, *, headers: dict[str, str] | None = None
               ) -> httpx.AsyncClient:
        """An HTTP client of this gateway, with ``key`` as bearer credential if given."""
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers={**auth, **(headers or {})},
                                 timeout=10)


@contextlib.asynccontextmanager
async def running_gateway(nats_url: str, data_dir: Path, **env: str) -> AsyncIterator[Gateway]:
    port = free_port()
    settings = Settings.from_env({"QUANTOPS_NATS_URL": nats_url, "QUANTOPS_DATA_DIR": str(data_dir),
                                  "QUANTOPS_GATEWAY_PORT": str(port), **env})
    nc = await connect_nats(settings, name="test-gateway", connect_timeout_s=5)
    bus = Bus(nc, service="gateway", timeout_s=settings.request_timeout_s)
    service = GatewayApp(settings)
    out = io.StringIO()
    modules = (*app_module.ROUTE_MODULES, PROBE_ROUTES)
    with contextlib.redirect_stdout(out), patch.object(app_module, "ROUTE_MODULES", modules):
        await service.start(bus)
    try:
        key = "" if settings.gateway.bootstrap_api_key else admin_key(data_dir, timeout_s=1)
        yield Gateway(url=f"http://127.0.0.1:{port}", nats_url=nats_url, data_dir=data_dir,
                      service=service,
                      admin_key=key or settings.gateway.bootstrap_api_key.reveal(),
                      stdout=out.getvalue())
    finally:
        await service.stop()
        await bus.close()


async def make_user_key(gw: Gateway, name: str, role: str) -> str:
    """Create user ``name`` with ``role`` and return a fresh API key of it."""
    async with gw.client(gw.admin_key) as http:
        r = await http.post("/v1/users", json={"name": name, "role": role})
        assert r.status_code == 201, r.text
        r = await http.post("/v1/keys", json={"user": name, "label": "test"})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])
