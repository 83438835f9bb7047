"""Helpers of the quant plugin tests: their own system of services (the fixtures in conftest.py
build on it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.bus import Bus, connect_nats
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from tests.support import ServiceProcess, service_env, start_nats, stop_all, wait_healthy

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


@contextlib.asynccontextmanager
async def running_quant_system(tmp: Path, *, backend_env: Mapping[str, str] | None = None,
                               executor_env: Mapping[str, str] | None = None
                               ) -> AsyncIterator[QuantSystem]:
    """A private nats-server with ``state``, ``registry`` and two ``executor`` processes, each
    healthy before it is handed over; all stopped afterwards. ``backend_env`` is more
    environment for state and registry, ``executor_env`` for both executors."""
    system = QuantSystem(nats=start_nats(tmp / "nats"), tmp=tmp)
    try:
        for service in ("state", "registry"):
            system.start(service, **(backend_env or {}))
        for _ in range(2):
            system.start("executor", **(executor_env or {}))
        for service in ("state", "registry"):
            await wait_healthy(system.url, service, timeout_s=60)
        await wait_healthy(system.url, "executor", timeout_s=60, instances=2)
        yield system
    finally:
        stop_all(system.processes)
        system.nats.stop()
