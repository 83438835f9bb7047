"""Workflows: a 5-node DAG with a failing branch, failure policies, validation, cancellation."""

from __future__ import annotations

import pytest

from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskStatus, WorkflowTask
from shared.errors import Conflict, InvalidRequest
from tests.integration.executor.support import until


def five_nodes(fail_retryable: bool = False) -> list[WorkflowTask]:
    """    a ─┬─ b ── d ─┐
              └─ c(fails) ┴─ e          d and e: e also depends on c, so only e is doomed."""
    return [
        WorkflowTask(name="a", type="collect", input={"value": 1}),
        WorkflowTask(name="b", type="collect", input={"value": 2}, depends_on=["a"]),
        WorkflowTask(name="c", type="fail", input={"retryable": fail_retryable},
                     depends_on=["a"], max_attempts=2, backoff_s=0.05),
        WorkflowTask(name="d", type="collect", input={"value": 4}, depends_on=["b"]),
        WorkflowTask(name="e", type="collect", input={"value": 5}, depends_on=["c", "d"]),
    ]


async def test_five_node_dag_with_a_failing_branch(client: ExecutorClient) -> None:
    reply = await client.submit_workflow(five_nodes(), name="five")
    wf = await client.wait_workflow(reply.workflow.id, timeout_s=30)
    status = {n.name: n.status for n in wf.nodes}
    assert status == {"a": "succeeded", "b": "succeeded", "c": "failed", "d": "succeeded",
                      "e": "failed"}
    assert wf.status == "failed" and wf.finished_at is not None
    e = await client.get(f"{wf.id}-e")
    assert e.status == TaskStatus.FAILED and e.started_at is None  # never ran
    assert e.error is not None and "upstream node 'c'" in e.error.message
    d = await client.get(f"{wf.id}-d")
    assert d.result == {"value": 4, "node": "d", "parents": {
        "b": {"value": 2, "node": "b", "parents": {
            "a": {"value": 1, "node": "a", "parents": {}}}}}}
    listed = await client.list(workflow_id=wf.id)
    assert listed.total == 5


async def test_cancel_policy_cancels_descendants_of_a_dead_node(client: ExecutorClient) -> None:
    reply = await client.submit_workflow(five_nodes(fail_retryable=True), on_failure="cancel")
    wf = await client.wait_workflow(reply.workflow.id, timeout_s=30)
    status = {n.name: n.status for n in wf.nodes}
    assert status["c"] == "dead" and status["e"] == "cancelled" and status["d"] == "succeeded"
    assert wf.status == "failed"
    assert (await client.get(f"{wf.id}-e")).status == TaskStatus.CANCELLED


async def test_all_nodes_succeeding_is_success(client: ExecutorClient) -> None:
    nodes = [WorkflowTask(name=n, type="noop", input={"value": n}, depends_on=deps)
             for n, deps in (("x", []), ("y", ["x"]), ("z", ["x"]), ("w", ["y", "z"]))]
    wf = await client.wait_workflow((await client.submit_workflow(nodes)).workflow.id,
                                    timeout_s=30)
    assert wf.status == "succeeded"
    records = await client.wait_many([n.task_id for n in wf.nodes], timeout_s=5)
    starts = {r.node: r.started_at or 0 for r in records}
    ends = {r.node: r.finished_at or 0 for r in records}
    assert starts["w"] >= max(ends["y"], ends["z"]) and min(starts["y"], starts["z"]) >= ends["x"]


@pytest.mark.parametrize(("nodes", "needle"), [
    ([WorkflowTask(name="a", type="noop", depends_on=["b"]),
      WorkflowTask(name="b", type="noop", depends_on=["c"]),
      WorkflowTask(name="c", type="noop", depends_on=["a"])], "cycle"),
    ([WorkflowTask(name="a", type="noop", depends_on=["ghost"])], "unknown nodes: ghost"),
    ([WorkflowTask(name="a", type="noop"), WorkflowTask(name="a", type="noop")], "duplicate"),
    ([WorkflowTask(name="a", type="nope")], "unknown task type"),
    ([WorkflowTask(name="a", type="sleep", input={"seconds": "x"})], "does not match"),
])
async def test_invalid_workflows_are_refused(client: ExecutorClient, nodes: list[WorkflowTask],
                                             needle: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        await client.submit_workflow(nodes)
    assert needle in e.value.message


async def test_idempotent_workflow_submission(client: ExecutorClient, unique: str) -> None:
    nodes = [WorkflowTask(name="only", type="noop")]
    first = await client.submit_workflow(nodes, idempotency_key=unique)
    second = await client.submit_workflow(nodes, idempotency_key=unique)
    assert second.duplicate and second.workflow.id == first.workflow.id


async def test_cancel_a_running_workflow(client: ExecutorClient) -> None:
    nodes = [WorkflowTask(name="slow", type="sleep", input={"seconds": 30}),
             WorkflowTask(name="after", type="noop", depends_on=["slow"])]
    wf = (await client.submit_workflow(nodes)).workflow
    await until(client, f"{wf.id}-slow", lambda r: r.status == TaskStatus.RUNNING)
    cancelled = await client.cancel_workflow(wf.id, reason="enough")
    assert cancelled.status == "cancelled"
    done = await client.wait_workflow(wf.id, timeout_s=10)
    assert {n.name: n.status for n in done.nodes} == {"slow": "cancelled",
                                                      "after": "cancelled"}
    with pytest.raises(Conflict):
        await client.cancel_workflow(wf.id)
