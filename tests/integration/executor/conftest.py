"""Executors of the tests' own: a private nats-server and real ``quantops serve executor``
processes. The session server may already run the ``system`` fixture's executor, which would
share the queue's durable consumers, hence private servers.

``cluster`` (one per test session of this package): 2 executors with fast retry settings and
the test plugin (``plugin.py``), for tests that only need tasks to run. ``one_slot`` (also one
per session): a single executor with concurrency 1, for tests that only need a task to wait
behind another; they leave nothing queued or running. Tests that need their own limits (a tiny
queue, short ack_wait, exact metrics), or that kill processes or the server, build one with
``new_cluster``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest

from shared.bus import Bus, connect_nats
from shared.clients.executor import ExecutorClient
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from shared.subjects import Stream
from tests.support import ServiceProcess, service_env, start_nats

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
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    infos = [await nc.jetstream().consumer_info(Stream.TASKS, f"executor-{p}")
                             for p in ("high", "normal", "low")]
                    if all((i.num_waiting or 0) >= count for i in infos):
                        return
                await asyncio.sleep(0.05)
            logs = "\n".join(p.log()[-2000:] for p in self.processes)
            raise TimeoutError(f"fewer than {count} executors pulling:\n{logs}")
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
            with contextlib.suppress(Exception):
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


@pytest.fixture(scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    tmp = tmp_path_factory.mktemp("executor")
    async with running_cluster(tmp, executors=2,
                               QUANTOPS_TRACE_FILE=str(tmp / "spans.jsonl")) as c:
        yield c


@pytest.fixture(scope="session")
async def client(cluster: Cluster) -> ExecutorClient:
    return await cluster.client()


@pytest.fixture(scope="session")
async def one_slot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """One executor running one task at a time (no CPU tasks: one worker process)."""
    async with running_cluster(tmp_path_factory.mktemp("one-slot"), executors=1,
                               QUANTOPS_EXECUTOR_CONCURRENCY="1",
                               QUANTOPS_EXECUTOR_WORKER_PROCESSES="1") as c:
        yield c


@pytest.fixture
def new_cluster(tmp_path: Path) -> Callable[..., Any]:
    """``async with new_cluster(executors=1, QUANTOPS_EXECUTOR_...="...") as c``."""
    count = iter(range(1000))

    def make(executors: int = 1, **env: str) -> contextlib.AbstractAsyncContextManager[Cluster]:
        return running_cluster(tmp_path / f"cluster-{next(count)}", executors, **env)

    return make
