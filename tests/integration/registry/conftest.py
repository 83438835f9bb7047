"""A registry of the tests' own: a private nats-server and a real ``quantops serve registry``
process per test module (the session server may already have a registry of the ``system``
fixture answering ``registry.*``; two registries on one server would share the subjects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.clients.registry import RegistryClient
from tests.integration.registry.support import Stack, connect, new_stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A private nats-server with one running registry, shared by a test module."""
    with new_stack(tmp_path_factory.mktemp("registry")) as s:
        await s.start()
        yield s


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[RegistryClient]:
    bus = await connect(stack.url)
    yield RegistryClient(bus, principal="tester")
    await bus.close()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own (restarts, kills); no registry started yet."""
    with new_stack(tmp_path) as s:
        yield s
