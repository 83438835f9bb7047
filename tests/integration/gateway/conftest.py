"""A real gateway, in-process, against the session nats-server; its own data dir per fixture.

In-process (not a subprocess) so tests can read its route table and start it again quickly;
it is the same ``GatewayApp`` that ``quantops serve gateway`` runs, uvicorn and all. The
module-wide ``gateway`` runs once per auth store (SQLite, JetStream KV), so every test that uses
it holds for both.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from shared.natsserver import EmbeddedNats
from tests.integration.gateway.support import (
    RELAXED,
    STORES,
    Gateway,
    make_user_key,
    running_gateway,
)
from tests.support import start_nats


@pytest.fixture
def start_gateway(
    nats_server: EmbeddedNats, tmp_path: Path
) -> Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]:
    """``async with start_gateway(data_dir=..., **env) as gw``: a gateway of the test's own."""

    def start(data_dir: Path | None = None, **env: str
              ) -> contextlib.AbstractAsyncContextManager[Gateway]:
        return running_gateway(nats_server.url, data_dir or tmp_path / "data", **env)

    return start


@pytest.fixture(scope="module")
def private_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A nats-server no service listens on: forwarded routes answer 503 and nothing a test
    sends (an admin DELETE in the role matrix) can reach the session's running services."""
    server = start_nats(tmp_path_factory.mktemp("gw-nats"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=sorted(STORES))
async def gateway(
    request: pytest.FixtureRequest, private_nats: EmbeddedNats,
    tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """One gateway per test module and auth store, with a user (and key) of each role."""
    async with running_gateway(private_nats.url, tmp_path_factory.mktemp("gw") / "data",
                               **RELAXED, **STORES[request.param]) as gw:
        gw.store, gw.nats_dir = request.param, private_nats.data_dir
        for role in ("viewer", "operator", "admin"):
            gw.keys[role] = await make_user_key(gw, f"the-{role}", role)
        yield gw
