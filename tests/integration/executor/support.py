"""Helpers of the executor tests: a cluster of executor processes on a private nats-server (the
fixtures in conftest.py build on it).
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats

from shared.bus import Bus, connect_nats
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskRecord
from shared.logs import swallowed
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from shared.subjects import Stream
from tests.support import ServiceProcess, eventually, service_env, start_nats

log = logging.getLogger(__name__)


PLUGIN = "tests.integration.executor.plugin"


FAST = {
    "QUANTOPS_EXECUTOR_CONCURRENCY": "8",
    "QUANTOPS_EXECUTOR_WORKER_PROCESSES": "2",
    "QUANTOPS_EXECUTOR_RETRY_BACKOFF_S": "0.05",
    "QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S": "2",
    "QUANTOPS_EXECUTOR_PLUGINS": PLUGIN,
    # The tests run their own plugin only: no scikit-learn import per executor start.
    "QUANTOPS_EXECUTOR_ENTRY_POINTS": "false",
    "QUANTOPS_LOG_FORMAT": "text",
}


@dataclass
class Cluster:
    """A nats-server and the executor processes started against it."""

    nats: EmbeddedNats
    tmp: Path
    env: dict[str, str]
    processes: list[ServiceProcess] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nats.url

    def start_executor(self, **env: str) -> ServiceProcess:
        log = self.tmp / f"executor-{len(self.processes)}.log"
        proc = ServiceProcess("executor", service_env(
            self.url, self.tmp / "data", **{**self.env, **env}), log).start()
        self.processes.append(proc)
        return proc

    async def wait_pulling(self, count: int, timeout_s: float = 30.0) -> None:
        """Until ``count`` executors pull (each keeps a request waiting on every consumer)."""
        nc = await nats.connect(self.url)

        async def pulling() -> bool:
            try:
                infos = [await nc.jetstream().consumer_info(Stream.TASKS, f"executor-{p}")
                         for p in ("high", "normal", "low")]
            except nats.js.errors.NotFoundError:  # no executor has created them yet
                return False
            return all((i.num_waiting or 0) >= count for i in infos)

        try:
            await eventually(pulling, timeout_s=timeout_s, interval_s=0.05)
        except TimeoutError as e:
            logs = "\n".join(p.log()[-2000:] for p in self.processes)
            raise TimeoutError(f"fewer than {count} executors pulling:\n{logs}") from e
        finally:
            await nc.close()

    async def bus(self) -> Bus:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": self.url})
        nc = await connect_nats(settings, name="executor-test", connect_timeout_s=5)
        bus = Bus(nc, service="test", timeout_s=10)
        self.buses.append(bus)
        return bus

    async def client(self) -> ExecutorClient:
        return ExecutorClient(await self.bus(), principal="tester")

    async def close(self) -> None:
        for b in self.buses:
            with swallowed(log, "closing a test bus", level=logging.DEBUG):
                await b.close()
        for p in self.processes:  # all at once: each may wait out its shutdown grace
            if p.process is not None and p.alive():
                p.process.send_signal(signal.SIGTERM)
        for p in self.processes:
            p.stop()
        self.nats.stop()


@contextlib.asynccontextmanager
async def running_cluster(tmp: Path, executors: int = 1, **env: str) -> AsyncIterator[Cluster]:
    cluster = Cluster(nats=start_nats(tmp / "nats"), tmp=tmp, env={**FAST, **env})
    try:
        for _ in range(executors):
            cluster.start_executor()
        if executors:
            await cluster.wait_pulling(executors)
        yield cluster
    finally:
        await cluster.close()


async def until(client: ExecutorClient, task_id: str, check: Callable[[TaskRecord], bool],
                timeout_s: float = 10.0) -> TaskRecord:
    """The task's record once ``check`` holds for it."""
    async def checked() -> TaskRecord | None:
        rec = await client.get(task_id)
        return rec if check(rec) else None

    return await eventually(checked, timeout_s=timeout_s, what=f"{task_id} in the awaited state")
