"""The quant tests' own system: a private nats-server with real ``state``, ``registry`` and two
``executor`` processes (the quant plugin loads through its entry point, as under ``quantops
up``). Private, because the session server may already run the ``system`` fixture's executor,
which would share the task queue's consumers. Started once for the package; tests isolate
themselves with unique model and dataset names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.bus import Bus, connect_nats
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from tests.support import ServiceProcess, service_env, start_nats, wait_healthy

ENV = {
    "QUANTOPS_LOG_FORMAT": "text",
    "QUANTOPS_EXECUTOR_WORKER_PROCESSES": "1",
    "QUANTOPS_EXECUTOR_CONCURRENCY": "4",
    "QUANTOPS_EXECUTOR_RETRY_BACKOFF_S": "0.2",
    "QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S": "2",
    "QUANTOPS_QUANT_RESOLVE_TTL_S": "2",
}


@dataclass
class QuantSystem:
    nats: EmbeddedNats
    tmp: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nats.url

    def start(self, service: str, **env: str) -> ServiceProcess:
        log = self.tmp / f"{service}-{len(self.processes)}.log"
        proc = ServiceProcess(service, service_env(self.url, self.tmp / "data",
                                                   **{**ENV, **env}), log).start()
        self.processes.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.service} ---\n{p.log()[-3000:]}" for p in self.processes)

    async def bus(self) -> Bus:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": self.url})
        nc = await connect_nats(settings, name="quant-test", connect_timeout_s=5)
        return Bus(nc, service="test", timeout_s=30)


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
