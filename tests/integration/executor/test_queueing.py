"""Priorities (and their starvation guard) and the queue-length guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from nats.js.errors import APIError

from services.executor.storage.streams import ensure_all
from shared.contracts.executor import TaskMessage, TaskStatus, new_id, queue_subject
from shared.errors import QueueFull
from shared.settings import Settings
from shared.subjects import Stream
from tests.integration.executor.support import Cluster


async def test_high_before_normal_before_low_and_low_is_not_starved(
    new_cluster: Callable[..., Any],
) -> None:
    """12 of each class queued before any executor runs; one slot; starvation limit 4.

    The rule: the highest waiting class starts, but normal takes the next slot after being
    passed over 4 times, low after 8. Expected: 4 high, a normal, high again, low after 8 passes,
    and so on; once high is drained, normal before low (low still taking its turns)."""
    async with new_cluster(executors=0, QUANTOPS_EXECUTOR_CONCURRENCY="1",
                           QUANTOPS_EXECUTOR_STARVATION_LIMIT="4") as c:
        client = await c.client()
        # The streams and consumers, as the executor creates them at start-up; nobody consumes.
        await ensure_all(client.bus.js, Settings.from_env(c.env))
        ids: dict[str, str] = {}
        for prio in ("low", "normal", "high"):  # the worst order for FIFO
            for _ in range(12):
                ids[await client.enqueue("sleep", {"seconds": 0.02}, priority=prio)] = prio
        c.start_executor()
        await c.wait_pulling(1)
        records = await client.wait_many(list(ids), timeout_s=30)
        order = [ids[r.id] for r in sorted(records, key=lambda r: r.started_at or 0)]
        assert all(r.status == TaskStatus.SUCCEEDED for r in records)
        assert order[:4] == ["high"] * 4, order
        assert order.index("normal") <= 5, order  # passed over at most 4 (+1) times
        first_low = order.index("low")
        assert first_low <= 11, order  # passed over at most 8 (+ the guard's normal turns)
        last_high = len(order) - 1 - order[::-1].index("high")
        assert first_low < last_high, "low started while high was still waiting"
        # Among what ran while all three classes waited, high dominated.
        window = order[:last_high + 1]
        assert window.count("high") == 12 and window.count("high") > 2 * window.count("normal")
        assert window.count("normal") >= window.count("low")
        # After high ran out: normal before low, except the guard's turns.
        rest = order[last_high + 1:]
        assert rest.index("normal") < rest.index("low") if "low" in rest else True


async def test_one_high_task_overtakes_a_waiting_backlog(one_slot: Cluster) -> None:
    client = await one_slot.client()
    backlog = [(await client.submit("sleep", {"seconds": 0.05}, priority="low")).task_id
               for _ in range(8)]
    urgent = (await client.submit("noop", {}, priority="high")).task_id
    records = await client.wait_many([*backlog, urgent], timeout_s=20)
    starts = sorted(records, key=lambda r: r.started_at or 0)
    # At most the low task already running and the one held for the starvation guard
    # start before the high one.
    assert [r.id for r in starts].index(urgent) <= 2


async def test_queue_full_is_refused_atomically(new_cluster: Callable[..., Any]) -> None:
    async with new_cluster(executors=1, QUANTOPS_EXECUTOR_CONCURRENCY="1",
                           QUANTOPS_EXECUTOR_MAX_QUEUE="3",
                           QUANTOPS_EXECUTOR_QUEUE_FULL_RETRY_AFTER_S="7") as c:
        client = await c.client()
        accepted = [(await client.submit("sleep", {"seconds": 5})).task_id for _ in range(3)]
        with pytest.raises(QueueFull) as e:
            await client.submit("sleep", {"seconds": 5})
        assert "queue full" in e.value.message and e.value.details["retry_after_s"] == 7
        assert e.value.details["limit"] == 3
        info = await client.bus.js.stream_info(Stream.TASKS)
        assert info.state.messages == 3
        # The same guard holds for a client publishing straight to the stream.
        with pytest.raises(APIError) as raw:
            await client.bus.js.publish(queue_subject("high", new_id()),
                                        msgspec.json.encode(TaskMessage(type="noop")))
        assert raw.value.err_code == 10077
        listed = await client.list(limit=100)
        assert sorted(r.id for r in listed.items) == sorted(accepted)  # nothing half-accepted
        for task_id in accepted:
            await client.cancel(task_id)
        ok = await client.submit("noop", {})
        assert (await client.wait(ok.task_id, timeout_s=10)).status == TaskStatus.SUCCEEDED
