"""A state service of the tests' own: a private nats-server per module and the real
``StateApp`` in-process (two replicas in one queue group), so tests can register migrations in
this process and reach into a replica. The session server may already run the ``system``
fixture's state service on the same subjects, hence the private server.

Process-level behaviour (SIGKILL, restarts, replicas as processes) uses ``spawn`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.service import GatewayApp
from shared.bus import Bus
from shared.clients.state import StateClient
from shared.natsserver import free_port
from shared.settings import Settings
from tests.gateway_auth import admin_key
from tests.integration.state.support import ENV, Stack, connect
from tests.support import start_nats


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    server = start_nats(tmp_path_factory.mktemp("state-nats"))
    s = Stack(server, Settings.from_env({"QUANTOPS_NATS_URL": server.url, **ENV}))
    try:
        await s.add_replica()
        await s.add_replica()
        yield s
    finally:
        await s.close()
        server.stop()


@pytest.fixture(scope="module")
async def client_bus(stack: Stack) -> AsyncIterator[Bus]:
    bus = await connect(stack.nats.url, "test")
    yield bus
    await bus.close()


@pytest.fixture
def state(client_bus: Bus) -> StateClient:
    """A client with a fresh session (``seen_revision`` 0)."""
    return StateClient(client_bus)


@pytest.fixture
def ns(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture(scope="module")
async def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[GatewayApp]:
    """A gateway in front of the module's state replicas (its data dir holds the admin key)."""
    data_dir: Path = tmp_path_factory.mktemp("gw") / "data"
    settings = Settings.from_env({
        "QUANTOPS_NATS_URL": stack.nats.url, "QUANTOPS_DATA_DIR": str(data_dir),
        "QUANTOPS_GATEWAY_PORT": str(free_port()), "QUANTOPS_GATEWAY_RATE_LIMIT_PER_S": "0"})
    bus = await connect(stack.nats.url, "gateway")
    app = GatewayApp(settings)
    await app.start(bus)
    try:
        yield app
    finally:
        await app.stop()
        await bus.close()


@pytest.fixture(scope="module")
async def http(gateway: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's HTTP client of the gateway."""
    settings = gateway.settings
    headers = {"Authorization": f"Bearer {admin_key(settings.data_dir, timeout_s=10)}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.gateway.port}",
                                 headers=headers, timeout=10) as client:
        yield client
