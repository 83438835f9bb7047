"""A state service of the tests' own: a private nats-server per module and the real
``StateApp`` in-process (two replicas in one queue group), so tests can register migrations in
this process and reach into a replica. The session server may already run the ``system``
fixture's state service on the same subjects, hence the private server.

Process-level behaviour (SIGKILL, restarts, replicas as processes) uses ``spawn`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.bus import Bus
from shared.clients.state import StateClient
from shared.settings import Settings
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
