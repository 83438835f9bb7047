"""The worker pool: results, exceptions across the pipe, kill-on-cancel and replacement."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from services.executor.runtime.workers import WorkerError, WorkerLost, WorkerPool
from shared.tasks import Retry
from tests.support import eventually, pid_alive
from tests.unit.executor import jobs


def gone(pid: int) -> bool:
    return not pid_alive(pid)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(2)
    await p.start()
    yield p
    await p.close()


async def test_results_and_exceptions_cross_the_pipe(pool: WorkerPool) -> None:
    assert await pool.run(jobs.add, (2, 3)) == 5
    assert await pool.run(jobs.pid) != os.getpid()
    with pytest.raises(ValueError, match="bad thing") as e:
        await pool.run(jobs.raise_value_error, ("bad thing",))
    assert "raised in a worker process" in "".join(e.value.__notes__)
    with pytest.raises(Retry) as r:
        await pool.run(jobs.raise_retry)
    assert r.value.delay_s == 3.0 and r.value.reason == "again"
    with pytest.raises(WorkerError) as w:
        await pool.run(jobs.raise_unpicklable)
    assert w.value.remote_type == "Local" and "made inside" in str(w.value)
    with pytest.raises(TypeError, match="cannot be sent back"):
        await pool.run(jobs.unsendable)
    assert pool.replaced == 0  # exceptions leave workers healthy


async def test_cancelling_a_runaway_call_kills_and_replaces_its_worker(
    pool: WorkerPool,
) -> None:
    before = set(pool.pids())
    started: list[int] = []
    call = asyncio.ensure_future(pool.run(jobs.spin_forever, on_start=started.append))
    await eventually(lambda: started)
    assert pool.busy == 1
    started_at = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: gone(started[0]))
    assert time.monotonic() - started_at < 1.0
    await eventually(lambda: len(pool.pids()) == 2)
    assert started[0] not in pool.pids() and len(set(pool.pids()) - before) == 1
    assert pool.replaced == 1
    assert await pool.run(jobs.add, (1, 1)) == 2


async def test_timeout_through_wait_for(pool: WorkerPool) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.run(jobs.spin_forever), 0.3)
    await eventually(lambda: pool.replaced == 1 and len(pool.pids()) == 2)


async def test_a_worker_that_dies_is_reported_and_replaced(pool: WorkerPool) -> None:
    with pytest.raises(WorkerLost):
        await pool.run(jobs.die)
    await eventually(lambda: len(pool.pids()) == 2)
    assert await pool.run(jobs.add, (3, 4)) == 7


async def test_progress_reaches_the_caller(pool: WorkerPool) -> None:
    seen: list[tuple[float, str]] = []
    assert await pool.run(jobs.with_progress, (4,),
                          on_progress=lambda f, n: seen.append((f, n))) == "done"
    await eventually(lambda: len(seen) == 4, timeout_s=5, what="four progress reports")
    assert seen == [(0.25, "step 1"), (0.5, "step 2"), (0.75, "step 3"), (1.0, "step 4")]


async def test_more_calls_than_workers_queue_up(pool: WorkerPool) -> None:
    results = await asyncio.gather(*(pool.run(jobs.add, (i, i)) for i in range(6)))
    assert results == [2 * i for i in range(6)]
