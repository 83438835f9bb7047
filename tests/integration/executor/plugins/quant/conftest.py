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
from tests.integration.executor.plugins.quant.support import QuantSystem, running_quant_system


@pytest.fixture(scope="package")
async def quant_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[QuantSystem]:
    async with running_quant_system(tmp_path_factory.mktemp("quant")) as system:
        yield system


@pytest.fixture
async def qbus(quant_system: QuantSystem) -> AsyncIterator[Bus]:
    bus = await quant_system.bus()
    yield bus
    await bus.close()


@pytest.fixture
async def fast_redelivery(tmp_path: Path) -> AsyncIterator[QuantSystem]:
    """Its own system: two executors that take over a silent peer's task after 2 s (the
    redelivery and live-restart tests)."""
    async with running_quant_system(tmp_path, backend_env={"QUANTOPS_QUANT_SEED_DEMO": "false"},
                                    executor_env={"QUANTOPS_EXECUTOR_ACK_WAIT_S": "2"}
                                    ) as system:
        yield system
