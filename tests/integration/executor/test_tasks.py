"""Submitting, reading, listing and idempotency against real executors."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import (
    TaskMessage,
    TaskRecord,
    TaskStatus,
    new_id,
    queue_subject,
    task_event_subject,
)
from shared.errors import InvalidRequest, NotFound
from shared.subjects import Stream
from tests.integration.executor.support import Cluster
from tests.support import eventually


async def queued_count(client: ExecutorClient) -> int:
    return (await client.bus.js.stream_info(Stream.TASKS)).state.messages


async def test_submit_runs_and_records_everything(client: ExecutorClient) -> None:
    before = time.time()
    reply = await client.submit("noop", {"value": {"answer": 42}}, priority="high")
    assert reply.status == TaskStatus.QUEUED and not reply.duplicate
    rec = await client.wait(reply.task_id, timeout_s=10)
    assert rec.status == TaskStatus.SUCCEEDED
    assert rec.result == {"answer": 42}
    assert rec.attempts == 1 and rec.priority == "high" and rec.principal == "tester"
    assert before <= rec.submitted_at <= (rec.started_at or 0) <= (rec.finished_at or 0)
    assert rec.worker.count(":") == 1  # host:pid of the executor that ran it
    assert (await client.get(reply.task_id)) == rec


@pytest.mark.parametrize(("type_", "input_", "needle"), [
    ("no_such_type", {}, "unknown task type"),
    ("sleep", {"seconds": "long"}, "Expected `float`, got `str`"),
    ("sleep", {"seconds": -1}, ">= 0"),
])
async def test_bad_submissions_are_refused_and_nothing_is_queued(
    client: ExecutorClient, type_: str, input_: dict[str, object], needle: str
) -> None:
    before = await queued_count(client)
    with pytest.raises(InvalidRequest) as e:
        await client.submit(type_, input_)
    assert needle in e.value.message
    if type_ == "sleep":
        assert e.value.details["path"] == "$.input.seconds"
    assert await queued_count(client) == before


async def test_idempotency_key_returns_the_same_task_and_runs_it_once(
    client: ExecutorClient, unique: str
) -> None:
    first = await client.submit("noop", {"value": 1}, idempotency_key=f"once-{unique}")
    second = await client.submit("noop", {"value": 1}, idempotency_key=f"once-{unique}")
    assert second.task_id == first.task_id and second.duplicate
    rec = await client.wait(first.task_id, timeout_s=10)
    third = await client.submit("noop", {"value": 1}, idempotency_key=f"once-{unique}")
    assert third.task_id == first.task_id and third.duplicate
    await asyncio.sleep(0.3)  # not a synchronisation: time for a second run that must not happen
    after = await client.get(first.task_id)
    assert rec.status == after.status == TaskStatus.SUCCEEDED and after.attempts == 1
    assert after.finished_at == rec.finished_at  # not run a second time


async def test_direct_jetstream_publish_is_deduplicated_by_msg_id(
    client: ExecutorClient, unique: str
) -> None:
    """The documented raw path: publish to tasks.queue.<priority>.<id> with Nats-Msg-Id."""
    js = client.bus.js
    task_id = new_id()
    runs: list[str] = []

    async def on_start(msg: object) -> None:
        runs.append(task_id)

    sub = await client.bus.nc.subscribe(task_event_subject("succeeded", task_id), cb=on_start)
    body = msgspec.json.encode(TaskMessage(type="noop", input=msgspec.Raw(b'{"value": 7}')))
    acks = [await js.publish(queue_subject("low", task_id), body,
                             headers={"Nats-Msg-Id": f"direct-{unique}"}) for _ in range(3)]
    assert [a.duplicate for a in acks] == [None, True, True]
    assert len({a.seq for a in acks}) == 1
    rec = await client.wait(task_id, timeout_s=10)
    assert rec.status == TaskStatus.SUCCEEDED and rec.result == 7 and rec.priority == "low"
    await eventually(lambda: runs, what="the succeeded event")
    await asyncio.sleep(0.3)  # not a synchronisation: time for a duplicate run that must not happen
    await sub.unsubscribe()
    assert runs == [task_id]


async def test_a_task_published_directly_reads_as_queued_until_it_runs(
    one_slot: Cluster,
) -> None:
    client = await one_slot.client()
    blocker = (await client.submit("sleep", {"seconds": 1.0})).task_id
    await _until(client, blocker, TaskStatus.RUNNING)
    task_id = await client.enqueue("noop", {"value": 1})
    # No record yet (published straight to the stream): the queue itself answers.
    rec = await client.get(task_id)
    assert (rec.status, rec.type, rec.attempts) == (TaskStatus.QUEUED, "noop", 0)
    assert (await client.wait(task_id, timeout_s=10)).status == TaskStatus.SUCCEEDED


async def _until(client: ExecutorClient, task_id: str, status: TaskStatus) -> TaskRecord:
    async def reached() -> TaskRecord | None:
        rec = await client.get(task_id)
        return rec if rec.status == status else None

    return await eventually(reached, what=f"{task_id} {status}")


async def test_get_unknown_task_is_not_found(client: ExecutorClient) -> None:
    with pytest.raises(NotFound):
        await client.get("t000000000000000000000000")


async def test_list_filters_and_pages(client: ExecutorClient, unique: str) -> None:
    since = time.time()
    ids = [(await client.submit("noop", {"value": i})).task_id for i in range(5)]
    bad = (await client.submit("fail", {"message": unique})).task_id
    await client.wait_many([*ids, bad], timeout_s=10)
    page1 = await client.list(since=since, limit=3)
    assert page1.total == 6 and len(page1.items) == 3 and page1.next_cursor
    page2 = await client.list(since=since, limit=3, cursor=page1.next_cursor)
    assert len(page2.items) == 3 and not page2.next_cursor
    listed = [r.id for r in page1.items + page2.items]
    assert sorted(listed) == sorted([*ids, bad])
    assert listed == sorted(listed, reverse=True)  # newest first (ids are time-ordered)
    failed = await client.list(since=since, status=[TaskStatus.FAILED])
    assert [r.id for r in failed.items] == [bad]
    by_type = await client.list(since=since, type="noop", status=[TaskStatus.SUCCEEDED])
    assert by_type.total == 5
    assert (await client.list(since=since, until=since)).total == 0


async def test_types_lists_builtins_and_plugins_with_schemas(client: ExecutorClient) -> None:
    types = {t.name: t for t in (await client.types()).items}
    assert {"noop", "sleep", "fail", "cpu_burn", "collect", "hybrid", "fan_out"} <= set(types)
    assert types["cpu_burn"].kind == "cpu" and types["sleep"].kind == "io"
    assert "seconds" in str(types["sleep"].input_schema)


async def test_a_task_submits_children_and_waits_for_them(client: ExecutorClient) -> None:
    reply = await client.submit("fan_out", {"children": 4})
    rec = await client.wait(reply.task_id, timeout_s=20)
    assert rec.status == TaskStatus.SUCCEEDED, rec.error
    assert rec.result["results"] == [0, 1, 2, 3]
    for child in rec.result["children"]:
        child_rec = await client.get(child)
        assert child_rec.parent_id == reply.task_id


async def test_status_changes_are_events(client: ExecutorClient) -> None:
    seen: list[TaskRecord] = []

    async def on_event(msg: object) -> None:
        seen.append(msgspec.json.decode(msg.data, type=TaskRecord))  # type: ignore[attr-defined]

    task_id = new_id()
    sub = await client.bus.nc.subscribe(task_event_subject("*", task_id), cb=on_event)
    await client.bus.js.publish(queue_subject("normal", task_id), msgspec.json.encode(
        TaskMessage(type="sleep", input=msgspec.Raw(b'{"seconds": 0.3}'))))
    await client.wait(task_id, timeout_s=10)
    await eventually(lambda: len(seen) >= 2, what="the running and succeeded events")
    await sub.unsubscribe()
    assert [r.status for r in seen] == [TaskStatus.RUNNING, TaskStatus.SUCCEEDED]


async def test_execution_span_continues_the_submitters_trace(
    client: ExecutorClient, cluster: Cluster
) -> None:
    trace_id, parent = "5bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    task_id = new_id()
    await client.bus.js.publish(queue_subject("normal", task_id), msgspec.json.encode(
        TaskMessage(type="noop")), headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    await client.wait(task_id, timeout_s=10)
    spans = await _spans(cluster, lambda s: s.get("trace_id") == trace_id)
    run = [s for s in spans if s["name"] == "task noop run"]
    assert run and run[0]["parent_id"] == parent
    assert run[0]["attributes"]["quantops.task_id"] == task_id

    # Through the validated submit: gateway/client span -> submit handler -> task run.
    trace2, parent2 = "6bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8"
    msg = await client.bus.nc.request(
        "executor.tasks.submit", b'{"type": "noop"}', timeout=10,
        headers={"traceparent": f"00-{trace2}-{parent2}-01"})
    await client.wait(msgspec.json.decode(msg.data)["task_id"], timeout_s=10)
    spans = await _spans(cluster, lambda s: s.get("trace_id") == trace2, want=2)
    by_name = {s["name"]: s for s in spans}
    handler = by_name["executor.tasks.submit process"]
    assert handler["parent_id"] == parent2
    assert by_name["task noop run"]["parent_id"] == handler["span_id"]


async def test_workflow_nodes_join_the_submitters_trace(
    client: ExecutorClient, cluster: Cluster
) -> None:
    trace_id, parent = "7bf92f3577b34da6a3ce929d0e0e4738", "20f067aa0ba902b9"
    body = b'{"tasks": [{"name": "a", "type": "noop"}, {"name": "b", "type": "collect", ' \
           b'"depends_on": ["a"]}]}'
    msg = await client.bus.nc.request("executor.workflows.submit", body, timeout=10,
                                      headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    wf_id = msgspec.json.decode(msg.data)["workflow"]["id"]
    assert (await client.wait_workflow(wf_id, timeout_s=10)).status == "succeeded"
    spans = await _spans(cluster, lambda s: s.get("trace_id") == trace_id, want=3)
    runs = {s["attributes"]["quantops.task_id"] for s in spans if s["name"].startswith("task ")}
    assert runs == {f"{wf_id}-a", f"{wf_id}-b"}


async def _spans(cluster: Cluster, match: object, want: int = 1) -> list[dict[str, object]]:
    path = cluster.tmp / "spans.jsonl"

    def enough() -> list[dict[str, object]] | None:
        if not path.exists():
            return None
        lines = path.read_bytes().splitlines()
        found = [s for s in (msgspec.json.decode(line) for line in lines) if match(s)]  # type: ignore[operator]
        ok = len(found) >= want and any(s["name"].startswith("task ") for s in found)
        return found if ok else None

    return await eventually(enough, interval_s=0.2, what=f"{want} matching spans")


async def test_a_plugin_serves_its_own_endpoint(client: ExecutorClient) -> None:
    from tests.integration.executor.plugin import EchoReply

    reply = await client.bus.request("executor.test.echo", {"text": "hi"}, EchoReply)
    assert reply == EchoReply(text="hi", started=True)
    with pytest.raises(InvalidRequest):
        await client.bus.request("executor.test.echo", {"text": 1}, EchoReply)
