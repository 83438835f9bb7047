"""Retries with backoff, dead letters, failed summaries and purging."""

from __future__ import annotations

import time

import pytest

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import FailedSummary, TaskStatus
from shared.errors import InvalidRequest, NotFound
from tests.support import eventually


async def test_retryable_failure_is_retried_with_backoff_then_dead_lettered(
    client: ExecutorClient, unique: str
) -> None:
    reply = await client.submit("fail", {"retryable": True, "message": f"flaky {unique}"},
                                max_attempts=3, backoff_s=0.2)
    started = time.monotonic()
    rec = await client.wait(reply.task_id, timeout_s=20)
    took = time.monotonic() - started
    assert rec.status == TaskStatus.DEAD and rec.attempts == 3
    assert rec.error is not None and rec.error.type == "TransientFailure"
    assert rec.error.message == f"flaky {unique}" and rec.error.retryable
    assert took >= 0.2 + 0.4  # backoff 0.2 s, then 0.4 s (doubling)

    page = await client.dead_letters(type="fail")
    letter = next(d for d in page.items if d.task_id == reply.task_id)
    assert letter.attempts == 3 and letter.error is not None
    assert letter.error.message == f"flaky {unique}" and letter.task.type == "fail"

    again = await client.resubmit_dead(reply.task_id, priority="high")
    assert again.resubmitted_from == reply.task_id and again.task_id != reply.task_id
    rerun = await client.wait(again.task_id, timeout_s=20)
    assert rerun.resubmitted_from == reply.task_id and rerun.priority == "high"
    assert rerun.status == TaskStatus.DEAD and rerun.attempts == 3  # a fresh set of attempts
    remaining = {d.task_id for d in (await client.dead_letters(type="fail", limit=1000)).items}
    assert reply.task_id not in remaining and again.task_id in remaining
    with pytest.raises(NotFound):
        await client.resubmit_dead(reply.task_id)


async def test_a_retry_can_succeed(client: ExecutorClient) -> None:
    reply = await client.submit("fail", {"retryable": True, "fail_attempts": 2},
                                max_attempts=5, backoff_s=0.05)
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.SUCCEEDED and rec.attempts == 3
    assert rec.result == {"succeeded_on_attempt": 3}


async def test_retry_with_explicit_delay(client: ExecutorClient) -> None:
    reply = await client.submit("fail", {"retryable": True, "fail_attempts": 1, "delay_s": 0.6},
                                max_attempts=2)
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.SUCCEEDED
    assert rec.started_at is not None and rec.started_at - rec.submitted_at >= 0.6


async def test_non_retryable_failure_fails_at_once(client: ExecutorClient) -> None:
    reply = await client.submit("fail", {"message": "bad input data"}, max_attempts=5)
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.FAILED and rec.attempts == 1
    assert rec.error is not None and rec.error.type == "FailedOnPurpose"
    assert not rec.error.retryable and "bad input data" in rec.error.traceback


async def test_failed_summary_counts_by_type_and_error(client: ExecutorClient) -> None:
    before = await client.failed_summary(window_s=600)
    ids = [(await client.submit("fail", {})).task_id for _ in range(3)]
    ids.append((await client.submit("cpu_burn", {"seconds": 5}, timeout_s=0.3)).task_id)
    await client.wait_many(ids, timeout_s=20)
    # The summary reads failure events, published just after each final record is durable.

    async def four_more_failures() -> FailedSummary | None:
        summary = await client.failed_summary(window_s=600)
        return summary if summary.total - before.total >= 4 else None

    after = await eventually(four_more_failures, timeout_s=5, interval_s=0.05,
                             what="four more failures in the summary")
    assert after.total - before.total == 4
    assert after.by_error["FailedOnPurpose"] - before.by_error.get("FailedOnPurpose", 0) == 3
    assert after.by_error["timeout"] - before.by_error.get("timeout", 0) == 1
    group = next(g for g in after.groups if g.type == "cpu_burn" and g.error_type == "timeout")
    assert group.count >= 1 and group.sample_task_id


async def test_purge_removes_only_old_finished_records(client: ExecutorClient) -> None:
    done = (await client.submit("noop", {})).task_id
    finished_at = (await client.wait(done, timeout_s=10)).finished_at
    assert finished_at is not None
    running = (await client.submit("sleep", {"seconds": 2})).task_id

    async def is_running() -> bool:
        return (await client.get(running)).status == TaskStatus.RUNNING

    await eventually(is_running, what="the sleep task running")
    # The clock is the condition here: the purge below takes records older than 0.2 s.
    await eventually(lambda: time.time() - finished_at > 0.3, what="the record 0.3 s old")
    with pytest.raises(InvalidRequest):
        await client.purge(0, status=["running"])
    reply = await client.purge(0.2)
    assert reply.purged >= 1 and reply.scanned >= reply.purged
    with pytest.raises(NotFound):
        await client.get(done)
    assert (await client.get(running)).status == TaskStatus.RUNNING
    await client.cancel(running)


async def test_failed_summary_reads_only_its_window(client: ExecutorClient) -> None:
    task_id = (await client.submit("fail", {})).task_id
    rec = await client.wait(task_id, timeout_s=10)
    assert rec.finished_at is not None
    finished_at = rec.finished_at

    async def in_summary() -> bool:
        groups = (await client.failed_summary(window_s=60)).groups
        return task_id in {g.sample_task_id for g in groups}

    await eventually(in_summary, timeout_s=5, interval_s=0.05, what="the failure in the summary")
    # The clock is the condition here: the failure must fall out of a 1 s window.
    await eventually(lambda: time.time() - finished_at > 1.2, timeout_s=5,
                     what="the failure 1.2 s old")
    assert (await client.failed_summary(window_s=1)).total == 0
