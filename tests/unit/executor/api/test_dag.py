"""Workflow DAGs: validation and the step after a node ends."""

from __future__ import annotations

import pytest

from services.executor.api import dag
from shared.contracts.executor import (
    NodeState,
    OnFailure,
    WorkflowRecord,
    WorkflowStatus,
    WorkflowTask,
)
from shared.errors import InvalidRequest


def node(name: str, *deps: str) -> WorkflowTask:
    return WorkflowTask(name=name, type="noop", depends_on=list(deps))


def workflow(nodes: list[WorkflowTask], policy: OnFailure = OnFailure.FAIL) -> WorkflowRecord:
    return WorkflowRecord(id="w1", status=WorkflowStatus.RUNNING, on_failure=policy,
                          nodes=[NodeState(name=n.name, task_id=f"w1-{n.name}", spec=n)
                                 for n in nodes])


def test_topological_order() -> None:
    order = dag.validate([node("d", "b", "c"), node("b", "a"), node("c", "a"), node("a")])
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")


@pytest.mark.parametrize(("nodes", "detail"), [
    ([node("a", "b"), node("b", "c"), node("c", "a")], {"cycle"}),
    ([node("a", "a")], {"cycle", "node"}),
    ([node("a", "zzz")], {"node", "unknown"}),
    ([node("a"), node("a")], {"duplicates"}),
])
def test_invalid_graphs(nodes: list[WorkflowTask], detail: set[str]) -> None:
    with pytest.raises(InvalidRequest) as e:
        dag.validate(nodes)
    assert set(e.value.details) == detail


def test_cycle_is_named() -> None:
    with pytest.raises(InvalidRequest) as e:
        dag.validate([node("x"), node("a", "x", "c"), node("b", "a"), node("c", "b")])
    cycle = e.value.details["cycle"]
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


def test_roots_are_ready_first_then_children_when_all_parents_succeeded() -> None:
    wf = workflow([node("a"), node("b"), node("c", "a", "b")])
    first = dag.step(wf, {}, 1.0)
    assert [n.name for n in first.ready] == ["a", "b"] and not first.finished
    second = dag.step(first.workflow, {"a": ("succeeded", "")}, 2.0)
    assert second.ready == []  # c still waits for b
    third = dag.step(second.workflow, {"b": ("succeeded", "")}, 3.0)
    assert [n.name for n in third.ready] == ["c"]
    done = dag.step(third.workflow, {"c": ("succeeded", "")}, 4.0)
    assert done.finished and done.workflow.status == WorkflowStatus.SUCCEEDED
    assert done.workflow.finished_at == 4.0


@pytest.mark.parametrize(("policy", "doomed_status"), [(OnFailure.FAIL, "failed"),
                                                        (OnFailure.CANCEL, "cancelled")])
def test_failure_dooms_descendants_only(policy: OnFailure, doomed_status: str) -> None:
    wf = workflow([node("a"), node("b", "a"), node("c", "b"), node("x")], policy)
    wf = dag.step(wf, {}, 1.0).workflow
    out = dag.step(wf, {"a": ("timed_out", "slow")}, 2.0)
    assert sorted(n.name for n in out.doomed) == ["b", "c"]
    assert all(n.status == doomed_status for n in out.doomed)
    assert "upstream node 'a'" in out.doomed[0].error
    assert not out.finished  # x still runs
    end = dag.step(out.workflow, {"x": ("succeeded", "")}, 3.0)
    assert end.finished and end.workflow.status == WorkflowStatus.FAILED


def test_a_cancelled_parent_always_cancels() -> None:
    wf = dag.step(workflow([node("a"), node("b", "a")]), {}, 1.0).workflow
    out = dag.step(wf, {"a": ("cancelled", "")}, 2.0)
    assert [n.status for n in out.doomed] == ["cancelled"]
    assert out.workflow.status == WorkflowStatus.CANCELLED


def test_a_finished_node_is_never_changed_again() -> None:
    wf = dag.step(workflow([node("a")]), {}, 1.0).workflow
    wf = dag.step(wf, {"a": ("succeeded", "")}, 2.0).workflow
    again = dag.step(wf, {"a": ("failed", "late")}, 3.0)
    assert again.workflow.nodes[0].status == "succeeded" and not again.finished


def test_cancel_pending() -> None:
    wf = dag.step(workflow([node("a"), node("b", "a")]), {}, 1.0).workflow
    out = dag.cancel_pending(wf, "stop", 2.0)
    assert out.workflow.status == WorkflowStatus.CANCELLED
    assert [n.name for n in out.doomed] == ["b"] and not out.finished  # a is still queued
