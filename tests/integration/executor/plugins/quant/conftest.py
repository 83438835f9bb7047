"""The quant tests' own system: a private nats-server with real ``state``, ``registry`` and two
``executor`` processes (the quant plugin loads through its entry point, as under ``quantops
up``). Private, because the session server may already run the ``system`` fixture's executor,
which would share the task queue's consumers. Started once for the package; tests isolate
themselves with unique model and dataset names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.bus import Bus
from tests.integration.executor.plugins.quant.support import QuantSystem
from tests.support import start_nats, wait_healthy


@pytest.fixture(scope="package")
async def quant_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[QuantSystem]:
    tmp = tmp_path_factory.mktemp("quant")
    system = QuantSystem(nats=start_nats(tmp / "nats"), tmp=tmp)
    try:
        for service in ("state", "registry", "executor", "executor"):
            system.start(service)
        for service in ("state", "registry"):
            await wait_healthy(system.url, service, timeout_s=60)
        await wait_healthy(system.url, "executor", timeout_s=60, instances=2)
        yield system
    finally:
        for p in system.processes:
            p.stop()
        system.nats.stop()


@pytest.fixture
async def qbus(quant_system: QuantSystem) -> AsyncIterator[Bus]:
    bus = await quant_system.bus()
    yield bus
    await bus.close()


@pytest.fixture
async def fast_redelivery(tmp_path: Path) -> AsyncIterator[QuantSystem]:
    """Its own system: two executors that take over a silent peer's task after 2 s (the
    redelivery and live-restart tests)."""
    system = QuantSystem(nats=start_nats(tmp_path / "nats"), tmp=tmp_path)
    try:
        for service in ("state", "registry"):
            system.start(service, QUANTOPS_QUANT_SEED_DEMO="false")
        for _ in range(2):
            system.start("executor", QUANTOPS_EXECUTOR_ACK_WAIT_S="2")
        for service in ("state", "registry"):
            await wait_healthy(system.url, service, timeout_s=60)
        await wait_healthy(system.url, "executor", timeout_s=60, instances=2)
        yield system
    finally:
        for p in system.processes:
            p.stop()
        system.nats.stop()
