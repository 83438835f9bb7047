"""Queries cost their window, and finished workflows expire (docs/operations.md).

One executor running one task at a time, a 2 s listing window and a 1 s workflow TTL, so
"outside the window" and "expired" are seconds away. The replies say how many status records
were read (``scanned``): the tests assert that records outside the window were not.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskStatus, WorkflowTask
from shared.errors import NotFound
from tests.integration.executor.support import Cluster, running_cluster, until
from tests.support import eventually

OLD = 20


@pytest.fixture(scope="module")
async def windowed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with running_cluster(Path(tmp_path_factory.mktemp("windows")), executors=1,
                               QUANTOPS_EXECUTOR_CONCURRENCY="1",
                               QUANTOPS_EXECUTOR_LIST_WINDOW_S="2",
                               QUANTOPS_EXECUTOR_WORKFLOW_TTL_S="1") as c:
        yield c


async def _clock_past(t: float) -> None:
    """Until the wall clock (the server's time for JetStream's by-time reads) is past ``t``."""
    await eventually(lambda: time.time() > t, timeout_s=30, interval_s=0.1,
                     what=f"the clock past {t}")


async def test_dashboard_queries_read_their_window_and_the_queue_only(
    windowed: Cluster,
) -> None:
    client = await windowed.client()
    old = await client.wait_many([(await client.submit("noop", {})).task_id
                                  for _ in range(OLD)], timeout_s=30)
    await _clock_past(max(r.updated_at for r in old) + 2.5)
    # One slot: a long task runs, five wait behind it.
    blocker = (await client.submit("sleep", {"seconds": 8})).task_id
    running = await until(client, blocker, lambda r: r.status == TaskStatus.RUNNING)
    waiting = [(await client.submit("noop", {}, priority=p)).task_id
               for p in ("high", "high", "high", "low", "low")]

    # Queue depth from the consumers' counters, no record read: each task is either still in
    # the stream (queued) or handed to the executor (in flight: running, or prefetched by its
    # dispatcher), so per priority the two add up to what was submitted and is unfinished.
    seen: list[object] = []

    async def depth_adds_up() -> bool:
        q = await client.queue()
        by = {str(d.priority): d.queued + d.in_flight for d in q.priorities}
        if by not in seen:
            seen.append(by)
        return q.queued + q.in_flight == 6 and by == {"high": 3, "normal": 1, "low": 2}
    try:
        await eventually(depth_adds_up, what="queue depth 6 unfinished tasks")
    except TimeoutError as e:
        raise AssertionError(f"queued + in flight by priority: {seen}") from e

    # Activity over the last 2 s: the running task was written before the window, yet counts
    # (it is still in the queue stream); the finished tasks before the window are not read.
    await _clock_past(running.updated_at + 2.2)
    activity = await client.activity(window_s=2, bucket_s=1)
    assert activity.buckets[-1].running == 1 and activity.buckets[-1].queued == 5
    assert activity.scanned <= 1 + len(waiting), activity.scanned
    wide = await client.activity(window_s=600, bucket_s=60)
    assert wide.scanned >= OLD + 1 + len(waiting)  # the counter counts: a wide window reads all

    # A listing without ``since`` reads the last ``list_window_s`` only.
    page = await client.list()
    assert page.scanned <= len(waiting) and page.total < OLD, (page.total, page.scanned)
    everything = await client.list(since=0, limit=1000)
    assert everything.total >= OLD + 1 + len(waiting) == everything.scanned

    await client.wait_many([blocker, *waiting], timeout_s=30)
    q = await client.queue()
    assert (q.queued, q.in_flight) == (0, 0)


async def test_a_finished_workflow_expires_a_running_one_does_not(windowed: Cluster) -> None:
    client: ExecutorClient = await windowed.client()
    slow = await client.submit_workflow([WorkflowTask(name="s", type="sleep",
                                                      input={"seconds": 3})])
    wf_id = slow.workflow.id
    await _clock_past(slow.workflow.created_at + 2)  # twice the TTL, still running
    assert (await client.get_workflow(wf_id)).status == "running"
    done = await client.wait_workflow(wf_id, timeout_s=30, poll_s=0.1)
    assert done.status == "succeeded"

    async def gone() -> bool:
        try:
            await client.get_workflow(wf_id)
        except NotFound:
            return True
        return False
    await eventually(gone, timeout_s=15, interval_s=0.2, what=f"workflow {wf_id} expired")
    # The node's task record follows its own TTL (a week here), not the workflow's.
    assert (await client.get(f"{wf_id}-s")).status == TaskStatus.SUCCEEDED
