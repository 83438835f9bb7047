"""Workflow DAGs as pure functions: validation at submission and the step after a node ends.

A node starts when all its parents succeeded. A node that ends in anything but success dooms
its pending descendants: ``on_failure="fail"`` marks them ``failed``, ``"cancel"`` marks them
``cancelled`` (a cancelled parent always cancels). Other branches carry on. The workflow ends
when every node has: ``succeeded`` if all did, else ``failed`` if any failed (failed, timed out,
dead), else ``cancelled``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from shared.contracts.executor import (
    FAILURES,
    TERMINAL,
    NodeState,
    OnFailure,
    TaskStatus,
    WorkflowRecord,
    WorkflowStatus,
    WorkflowTask,
)
from shared.errors import InvalidRequest

PENDING = "pending"
_TERMINAL = {str(s) for s in TERMINAL}
_FAILURES = {str(s) for s in FAILURES}


def validate(tasks: Iterable[WorkflowTask]) -> list[str]:
    """Node names in a topological order; unknown references, duplicates and cycles raise."""
    nodes = list(tasks)
    names = [t.name for t in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidRequest(f"duplicate node names: {', '.join(dupes)}",
                             details={"duplicates": dupes})
    known = set(names)
    for t in nodes:
        missing = [d for d in t.depends_on if d not in known]
        if missing:
            raise InvalidRequest(f"node {t.name!r} depends on unknown nodes: {', '.join(missing)}",
                                 details={"node": t.name, "unknown": missing})
        if t.name in t.depends_on:
            raise InvalidRequest(f"node {t.name!r} depends on itself",
                                 details={"node": t.name, "cycle": [t.name, t.name]})
    return _toposort(nodes)


def _toposort(nodes: list[WorkflowTask]) -> list[str]:
    indegree = {t.name: len(set(t.depends_on)) for t in nodes}
    children: dict[str, list[str]] = {t.name: [] for t in nodes}
    for t in nodes:
        for d in set(t.depends_on):
            children[d].append(t.name)
    ready = [n for n in indegree if indegree[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for c in children[n]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) < len(nodes):
        cycle = _find_cycle({t.name: list(t.depends_on) for t in nodes if indegree[t.name]})
        raise InvalidRequest(f"the workflow has a cycle: {' -> '.join(cycle)}",
                             details={"cycle": cycle})
    return order


def _find_cycle(deps: dict[str, list[str]]) -> list[str]:
    path: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> list[str] | None:
        if n in path:
            return [*path[path.index(n):], n]
        if n in seen or n not in deps:
            return None
        seen.add(n)
        path.append(n)
        for d in deps[n]:
            found = visit(d)
            if found:
                return found
        path.pop()
        return None

    for start in deps:
        found = visit(start)
        if found:
            return list(reversed(found))
    return sorted(deps)


@dataclass
class Step:
    """What one update of a workflow requires: the record to store, nodes to queue, nodes
    that will never run (with the status and reason to record for them)."""

    workflow: WorkflowRecord
    ready: list[NodeState] = field(default_factory=list)
    doomed: list[NodeState] = field(default_factory=list)
    finished: bool = False


def step(wf: WorkflowRecord, updates: dict[str, tuple[str, str]], now: float) -> Step:
    """Apply node ``updates`` ({name: (status, error)}) and work out what follows."""
    nodes = {n.name: n for n in wf.nodes}
    for name, (status, error) in updates.items():
        if name in nodes and nodes[name].status not in _TERMINAL:
            nodes[name] = msgspec.structs.replace(nodes[name], status=status, error=error)
    out = Step(workflow=wf)
    changed = True
    while changed:  # dooming one node can doom its children: repeat to a fixed point
        changed = False
        for n in wf.nodes:
            node = nodes[n.name]
            if node.status != PENDING:
                continue
            doomed = _doom(node, nodes, wf.on_failure)
            if doomed is not None:
                nodes[n.name] = doomed
                out.doomed.append(doomed)
                changed = True
    if wf.status == WorkflowStatus.RUNNING:
        for n in wf.nodes:
            node = nodes[n.name]
            if node.status == PENDING and all(
                    nodes[d].status == TaskStatus.SUCCEEDED for d in node.spec.depends_on):
                nodes[n.name] = msgspec.structs.replace(node, status=str(TaskStatus.QUEUED))
                out.ready.append(nodes[n.name])
    ordered = [nodes[n.name] for n in wf.nodes]
    status, finished = _overall(wf.status, ordered)
    out.finished = finished and wf.finished_at is None
    out.workflow = msgspec.structs.replace(
        wf, nodes=ordered, status=status, updated_at=now,
        finished_at=(now if out.finished else wf.finished_at))
    return out


def _doom(node: NodeState, nodes: dict[str, NodeState], policy: OnFailure) -> NodeState | None:
    for d in node.spec.depends_on:
        parent = nodes[d]
        if parent.status in _TERMINAL and parent.status != TaskStatus.SUCCEEDED:
            cancel = policy == OnFailure.CANCEL or parent.status == TaskStatus.CANCELLED
            status = TaskStatus.CANCELLED if cancel else TaskStatus.FAILED
            return msgspec.structs.replace(
                node, status=str(status), error=f"upstream node {d!r} ended {parent.status}")
    return None


def _overall(current: WorkflowStatus, nodes: list[NodeState]) -> tuple[WorkflowStatus, bool]:
    if not all(n.status in _TERMINAL for n in nodes):
        return current, False
    if current == WorkflowStatus.CANCELLED:
        return current, True
    if all(n.status == TaskStatus.SUCCEEDED for n in nodes):
        return WorkflowStatus.SUCCEEDED, True
    if any(n.status in _FAILURES for n in nodes):
        return WorkflowStatus.FAILED, True
    return WorkflowStatus.CANCELLED, True


def cancel_pending(wf: WorkflowRecord, reason: str, now: float) -> Step:
    """Cancel a workflow: pending nodes are cancelled now, queued ones by the caller."""
    doomed = [msgspec.structs.replace(n, status=str(TaskStatus.CANCELLED), error=reason)
              for n in wf.nodes if n.status == PENDING]
    by_name = {n.name: n for n in doomed}
    nodes = [by_name.get(n.name, n) for n in wf.nodes]
    cancelled = msgspec.structs.replace(wf, status=WorkflowStatus.CANCELLED, nodes=nodes,
                                        updated_at=now)
    _, finished = _overall(WorkflowStatus.CANCELLED, nodes)
    if finished:
        cancelled = msgspec.structs.replace(cancelled, finished_at=now)
    return Step(workflow=cancelled, doomed=doomed, finished=finished)
