"""Processes and servers dying: a SIGKILLed executor's task completes once on a survivor,
nothing is lost across a nats-server restart, SIGTERM hands unfinished work back."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskRecord, TaskStatus, WorkflowTask, task_event_subject
from shared.errors import NotFound, ServiceTimeout
from shared.settings import Settings
from shared.subjects import Stream
from tests.integration.executor.support import until
from tests.support import eventually
from tests.support import pid_alive as alive

pytestmark = pytest.mark.slow


async def event_count(client: ExecutorClient, status: str, task_id: str) -> int:
    info = await client.bus.js.stream_info(
        Stream.EVENTS, subjects_filter=task_event_subject(status, task_id))
    return sum((info.state.subjects or {}).values())


def pid_of(rec: TaskRecord) -> int:
    return int(rec.worker.rpartition(":")[2])


async def test_sigkilled_executor_task_completes_once_on_the_survivor(
    new_cluster: Callable[..., Any],
) -> None:
    async with new_cluster(executors=2, QUANTOPS_EXECUTOR_ACK_WAIT_S="2") as c:
        client = await c.client()
        # The first attempt is killed, so its length only has to outlast the kill; the retry
        # on the survivor is short.
        reply = await client.submit("hybrid", {"seconds": 30, "retry_seconds": 0.1})
        running = await until(client, reply.task_id, lambda r: r.worker_pid is not None)
        victim = next(p for p in c.processes if p.pid == pid_of(running))
        survivor = next(p for p in c.processes if p is not victim)
        victim.kill()
        assert running.worker_pid is not None
        rec = await client.wait(reply.task_id, timeout_s=30)
        assert rec.status == TaskStatus.SUCCEEDED and rec.attempts == 2
        assert pid_of(rec) == survivor.pid
        await asyncio.sleep(0.5)  # not a synchronisation: time for a duplicate that must not come
        assert await event_count(client, "succeeded", reply.task_id) == 1
        # The dead executor's worker process did not outlive it.
        assert not alive(running.worker_pid)


async def test_a_dead_executors_tasks_are_redelivered_within_seconds(
    new_cluster: Callable[..., Any],
) -> None:
    """Default ack_wait (5 s) with heartbeats every third of it: the survivor starts the dead
    executor's task a few seconds after the kill, not the 30 s it used to take."""
    assert Settings().executor.ack_wait_s == 5.0
    async with new_cluster(executors=2) as c:
        client = await c.client()
        reply = await client.submit("hybrid", {"seconds": 30, "retry_seconds": 0.1})
        running = await until(client, reply.task_id, lambda r: r.worker_pid is not None)
        # Heartbeats keep it: well past ack_wait, it is still on its first attempt (time must
        # pass here: what is checked is that nothing happens).
        await asyncio.sleep(Settings().executor.ack_wait_s * 1.5)
        held = await client.get(reply.task_id)
        assert held.attempts == 1 and held.status == TaskStatus.RUNNING
        victim = next(p for p in c.processes if p.pid == pid_of(running))
        killed_at = time.time()
        victim.kill()
        again = await until_across_the_kill(client, reply.task_id, lambda r: r.attempts == 2)
        assert again.attempts == 2 and again.started_at is not None
        delay = again.started_at - killed_at
        print(f"redelivered {delay:.2f} s after SIGKILL (ack_wait 5 s)")
        assert delay < 7.0, delay


async def until_across_the_kill(client: ExecutorClient, task_id: str,
                                check: Callable[[TaskRecord], bool]) -> TaskRecord:
    """``until``, but a read that was in flight to the killed executor (a queue-group member
    until the server sees its socket close) is lost, as any NATS request to a dying responder
    is: its timeout is the caller's cue to ask again."""
    async def checked() -> TaskRecord | None:
        try:
            rec = await client.get(task_id)
        except ServiceTimeout:  # the read went to the dying executor: ask again
            return None
        return rec if check(rec) else None

    return await eventually(checked, timeout_s=30, what=f"{task_id} in the awaited state")


async def test_nothing_is_lost_across_a_nats_server_restart(
    new_cluster: Callable[..., Any],
) -> None:
    async with new_cluster(executors=1, QUANTOPS_EXECUTOR_CONCURRENCY="4",
                           QUANTOPS_EXECUTOR_ACK_WAIT_S="1.5") as c:
        client = await c.client()
        ids = [await client.enqueue("sleep", {"seconds": 0.1}) for _ in range(40)]
        async def some_done() -> bool:  # some done, some running, most waiting
            records = [await client.get(i) for i in ids[:8]]
            return any(r.status == TaskStatus.SUCCEEDED for r in records)

        await eventually(some_done, what="a first task done")
        c.nats.stop()
        await asyncio.sleep(0.5)  # not a synchronisation: the outage lasts a while
        c.nats.start()
        # Events published while this client reconnected are missed: poll often for those.
        records = await client.wait_many(ids, timeout_s=60, poll_s=0.25)
        assert [r.status for r in records] == [TaskStatus.SUCCEEDED] * 40
        assert (await client.bus.js.stream_info(Stream.TASKS)).state.messages == 0
        # The executor kept serving without a restart of its own.
        assert c.processes[0].alive()


async def test_sigterm_lets_short_tasks_finish_and_hands_long_ones_back(
    new_cluster: Callable[..., Any],
) -> None:
    async with new_cluster(executors=1, QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S="1") as c:
        client = await c.client()
        short = (await client.submit("sleep", {"seconds": 0.5})).task_id
        # Far longer than the grace period; once handed back, the retry is short.
        long = (await client.submit("nap", {"seconds": 30, "retry_seconds": 0.1})).task_id
        for task_id in (short, long):
            await until(client, task_id, lambda r: r.status == TaskStatus.RUNNING)
        # Both tasks are held by the first executor: its successor may start meanwhile.
        c.start_executor()
        started = time.monotonic()
        assert c.processes[0].stop() == 0
        assert time.monotonic() - started < 5
        await c.wait_pulling(1)
        assert (await client.get(short)).status == TaskStatus.SUCCEEDED
        rec = await client.wait(long, timeout_s=20)
        assert rec.status == TaskStatus.SUCCEEDED and rec.attempts == 2
        assert pid_of(rec) == c.processes[1].pid and rec.result["slept_s"] == 0.1


async def test_a_workflow_survives_its_executor_being_killed(
    new_cluster: Callable[..., Any],
) -> None:
    async with new_cluster(executors=2, QUANTOPS_EXECUTOR_ACK_WAIT_S="2") as c:
        client = await c.client()
        wf = (await client.submit_workflow([
            # Killed on its first attempt; the redelivery is short.
            WorkflowTask(name="a", type="nap", input={"seconds": 30, "retry_seconds": 0.1}),
            WorkflowTask(name="b", type="collect", input={"value": "b"}, depends_on=["a"]),
            WorkflowTask(name="c", type="collect", input={"value": "c"}, depends_on=["b"]),
        ])).workflow
        running = await until(client, f"{wf.id}-a", lambda r: r.status == TaskStatus.RUNNING)
        assert running.status == TaskStatus.RUNNING, running
        victim = next(p for p in c.processes if p.pid == pid_of(running))
        survivor = next(p for p in c.processes if p is not victim)
        victim.kill()
        done = await client.wait_workflow(wf.id, timeout_s=30, poll_s=0.1)
        assert done.status == "succeeded", done
        c_rec = await client.get(f"{wf.id}-c")
        assert c_rec.result["parents"] == {"b": {"value": "b", "parents": {
            "a": {"slept_s": 0.1, "attempt": 2}}, "node": "b"}}
        assert (await client.get(f"{wf.id}-a")).attempts == 2
        assert os.getpid() != pid_of(c_rec) == survivor.pid


async def test_final_records_expire_by_their_ttl_running_ones_stay(
    new_cluster: Callable[..., Any],
) -> None:
    # The shortest stream limits the settings allow (duplicate windows must shrink with them).
    async with new_cluster(executors=1, QUANTOPS_EXECUTOR_RECORD_TTL_S="2",
                           QUANTOPS_EVENTS_MAX_AGE_S="60",
                           QUANTOPS_EXECUTOR_DEAD_LETTER_MAX_AGE_S="60") as c:
        client = await c.client()
        done = (await client.submit("noop", {})).task_id
        running = (await client.submit("nap", {"seconds": 8, "retry_seconds": 0.1})).task_id
        await client.wait(done, timeout_s=10)

        async def expired() -> bool:
            try:
                await client.get(done)
            except NotFound:
                return True
            return False

        # TTL 2 s, plus the server's expiry sweep.
        await eventually(expired, timeout_s=6, interval_s=0.1, what="the final record expired")
        rec = await client.get(running)
        assert rec.status == TaskStatus.RUNNING  # written without a TTL: kept while it runs
