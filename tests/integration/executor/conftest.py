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

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from shared.clients.executor import ExecutorClient
from tests.integration.executor.support import Cluster, running_cluster


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
