"""Worker processes: a runaway loop is killed on timeout and its worker replaced; cancelling
stops running tasks within a second and keeps queued ones from ever starting."""

from __future__ import annotations

import os
import time

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskStatus
from tests.integration.executor.support import Cluster, until
from tests.support import eventually
from tests.support import pid_alive as alive


async def test_runaway_cpu_loop_is_killed_on_timeout_and_worker_replaced(
    client: ExecutorClient
) -> None:
    reply = await client.submit("cpu_burn", {"seconds": 3600}, timeout_s=1.0)
    running = await until(client, reply.task_id, lambda r: r.worker_pid is not None)
    pid = running.worker_pid
    assert pid is not None and alive(pid)
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.TIMED_OUT and rec.attempts == 1
    assert rec.error is not None and rec.error.type == "timeout"
    assert rec.finished_at is not None and rec.started_at is not None
    assert 0.9 <= rec.finished_at - rec.started_at < 1.6
    await eventually(lambda: not alive(pid), what="the worker running the loop gone")
    # The pool is whole again: CPU tasks still run, on a new worker.
    again = await client.wait((await client.submit("cpu_burn", {"seconds": 0.1})).task_id,
                              timeout_s=10)
    assert again.status == TaskStatus.SUCCEEDED and again.result["pid"] != pid


async def test_hybrid_task_runs_cpu_work_in_a_worker_with_progress(
    client: ExecutorClient
) -> None:
    reply = await client.submit("hybrid", {"seconds": 1.5})
    mid = await until(client, reply.task_id, lambda r: (r.progress or 0) > 0.2)
    assert mid.status == TaskStatus.RUNNING and mid.worker_pid is not None
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.SUCCEEDED
    assert rec.result["worker"]["pid"] == mid.worker_pid != os.getpid()


async def test_cancel_running_io_task_within_a_second(client: ExecutorClient) -> None:
    reply = await client.submit("sleep", {"seconds": 30})
    await until(client, reply.task_id, lambda r: r.status == TaskStatus.RUNNING)
    started = time.monotonic()
    out = await client.cancel(reply.task_id, reason="changed my mind")
    assert time.monotonic() - started < 1.0
    assert out.cancelled and out.record is not None
    assert out.record.status == TaskStatus.CANCELLED
    assert out.record.error is not None and "changed my mind" in out.record.error.message
    again = await client.cancel(reply.task_id)
    assert not again.cancelled and again.record is not None  # already finished


async def test_cancel_running_cpu_task_kills_its_worker(client: ExecutorClient) -> None:
    reply = await client.submit("hybrid", {"seconds": 60})
    running = await until(client, reply.task_id, lambda r: r.worker_pid is not None)
    started = time.monotonic()
    out = await client.cancel(reply.task_id)
    assert time.monotonic() - started < 1.0
    assert out.cancelled and out.record is not None
    assert out.record.status == TaskStatus.CANCELLED
    pid = running.worker_pid
    assert pid is not None
    await eventually(lambda: not alive(pid), what="the cancelled task's worker gone")


async def test_worker_pid_is_recorded_when_the_worker_starts(client: ExecutorClient) -> None:
    # The task is running before its CPU part takes a worker, and that part reports no
    # progress: the pid must be written when the worker starts, not with a later progress.
    reply = await client.submit("io_then_cpu", {"seconds": 30}, timeout_s=60)
    running = await until(client, reply.task_id, lambda r: r.worker_pid is not None)
    try:
        assert running.status == TaskStatus.RUNNING and running.worker_pid is not None
        assert alive(running.worker_pid)
    finally:
        await client.cancel(reply.task_id, reason="test over")


async def test_cancel_queued_task_never_starts(one_slot: Cluster) -> None:
    client = await one_slot.client()
    blocker = (await client.submit("sleep", {"seconds": 1.0})).task_id
    await until(client, blocker, lambda r: r.status == TaskStatus.RUNNING)
    queued = [(await client.submit("noop", {"value": i}, timeout_s=42, max_attempts=5)).task_id
              for i in range(4)]
    # queued[0] is likely already held by the busy executor (it buffers one task ahead),
    # queued[2] still in the stream: both are cancelled before they start, either way.
    for i in (0, 2):
        out = await client.cancel(queued[i], reason="not needed")
        assert out.cancelled and out.record is not None
        assert out.record.status == TaskStatus.CANCELLED
    records = await client.wait_many([blocker, *queued], timeout_s=15)
    assert [r.status for r in records] == [TaskStatus.SUCCEEDED, TaskStatus.CANCELLED,
                                           TaskStatus.SUCCEEDED, TaskStatus.CANCELLED,
                                           TaskStatus.SUCCEEDED]
    for cancelled in (records[1], records[3]):
        assert cancelled.started_at is None and cancelled.attempts == 0, cancelled
        assert (cancelled.max_attempts, cancelled.timeout_s) == (5, 42), cancelled
