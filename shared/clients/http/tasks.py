"""``client.tasks``: the executor's tasks, workflows and dead letters (``/v1/tasks`` ...).

    sub = client.tasks.submit("sleep", {"seconds": 1}, priority="high")
    record = client.tasks.wait(sub.task_id, timeout_s=60)       # the final TaskRecord
    for record in client.tasks.events(sub.task_id): ...         # each status change, live
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec

from shared.clients.http._calls import (
    TT,
    Call,
    Event,
    First,
    OnReady,
    Paged,
    Resource,
    Sse,
    op,
    pages,
    stream,
)
from shared.contracts import executor as c

_record = msgspec.json.Decoder(c.TaskRecord).decode


def _decode_record(event: Event) -> c.TaskRecord | None:
    # Keep-alive comments reach some readers as empty events: only records count.
    return _record(event.data) if event.data.startswith("{") else None


def _finished(record: c.TaskRecord) -> bool:
    return record.status in c.TERMINAL


def _task(task_id: str, *rest: str) -> str:
    return "/".join([f"/v1/tasks/{quote(task_id, safe='')}", *rest])


class Tasks(Resource[TT]):
    @op
    def submit(self, type: str, input: Mapping[str, Any] | None = None, *,
               priority: c.Priority | str = c.Priority.NORMAL, timeout_s: float | None = None,
               max_attempts: int | None = None, backoff_s: float | None = None,
               idempotency_key: str = "") -> Call[c.SubmitReply]:
        """Queue a task (validated against its type's input schema first). A full queue
        raises ``QueueFull`` with ``retry_after_s`` in its details."""
        return Call("POST", "/v1/tasks", c.SubmitReply, json=c.SubmitTask(
            type=type, input=dict(input or {}), priority=c.Priority(priority),
            timeout_s=timeout_s, max_attempts=max_attempts, backoff_s=backoff_s,
            idempotency_key=idempotency_key))

    @op
    def get(self, task_id: str) -> Call[c.TaskRecord]:
        return Call("GET", _task(task_id), c.TaskRecord)

    @op
    def page(self, *, status: Sequence[c.TaskStatus | str] = (), type: str = "",
             workflow_id: str = "", since: float | None = None, until: float | None = None,
             limit: int = 100, cursor: str = "") -> Call[c.TaskPage]:
        """One page of tasks, newest first (``page.total`` counts every match)."""
        return Call("GET", "/v1/tasks", c.TaskPage, params={
            "status": [str(s) for s in status], "type": type, "workflow_id": workflow_id,
            "since": since, "until": until, "limit": limit, "cursor": cursor})

    @pages
    def iter(self, *, status: Sequence[c.TaskStatus | str] = (), type: str = "",
             workflow_id: str = "") -> Paged[c.TaskPage, c.TaskRecord]:
        return Paged(lambda cursor: Tasks.page.plan(
            self, status=status, type=type, workflow_id=workflow_id, limit=1000,
            cursor=cursor), lambda page: page.items)

    @op
    def cancel(self, task_id: str, *, reason: str = "") -> Call[c.CancelReply]:
        return Call("POST", _task(task_id, "cancel"), c.CancelReply, json={"reason": reason})

    @stream
    def events(self, task_id: str, *, on_ready: OnReady | None = None) -> Sse[c.TaskRecord]:
        """The task's record now, then each change; the feed ends with the final record.
        ``on_ready()`` once the feed is live, before the first record."""
        return Sse(Call("GET", _task(task_id, "events")), _decode_record, on_ready)

    @stream
    def all_events(self, *, type: str = "", status: Sequence[c.TaskStatus | str] = (),
                   on_ready: OnReady | None = None) -> Sse[c.TaskRecord]:
        """Every task status change as it happens (optionally of one type or statuses);
        ``on_ready()`` once the feed is live."""
        return Sse(Call("GET", "/v1/task-events",
                        params={"type": type, "status": [str(s) for s in status]}),
                   _decode_record, on_ready)

    @op
    def wait(self, task_id: str, *, timeout_s: float | None = None) -> First[c.TaskRecord]:
        """The task's final record, as soon as it is final (``ServiceTimeout`` after
        ``timeout_s``)."""
        return First(Tasks.events.plan(self, task_id), _finished, timeout_s)

    @op
    def failed_summary(self, *, window_s: float = 3600.0) -> Call[c.FailedSummary]:
        return Call("GET", "/v1/tasks/failed-summary", c.FailedSummary,
                    params={"window_s": window_s})

    @op
    def activity(self, *, window_s: float = 3600.0, bucket_s: float = 60.0
                 ) -> Call[c.TaskActivity]:
        """Tasks submitted, started and finished per bucket, with the queue depth and the
        tasks running at each bucket's end."""
        return Call("GET", "/v1/tasks/activity", c.TaskActivity,
                    params={"window_s": window_s, "bucket_s": bucket_s})

    @op
    def queue(self) -> Call[c.QueueDepth]:
        """Tasks waiting and held by executors now, per priority (from JetStream's counters)."""
        return Call("GET", "/v1/tasks/queue", c.QueueDepth)

    @op
    def purge(self, *, older_than_s: float, status: Sequence[c.TaskStatus | str] = ()
              ) -> Call[c.PurgeReply]:
        return Call("POST", "/v1/tasks/purge", c.PurgeReply,
                    json={"older_than_s": older_than_s, "status": [str(s) for s in status]})

    @op
    def dead_letters(self, *, type: str = "", limit: int = 100, cursor: str = ""
                     ) -> Call[c.DeadPage]:
        return Call("GET", "/v1/dead-letters", c.DeadPage,
                    params={"type": type, "limit": limit, "cursor": cursor})

    @pages
    def iter_dead_letters(self, *, type: str = "") -> Paged[c.DeadPage, c.DeadLetter]:
        return Paged(lambda cursor: Tasks.dead_letters.plan(self, type=type, limit=1000,
                                                            cursor=cursor),
                     lambda page: page.items)

    @op
    def resubmit_dead(self, task_id: str, *, priority: c.Priority | str | None = None
                      ) -> Call[c.ResubmitReply]:
        return Call("POST", f"/v1/dead-letters/{quote(task_id, safe='')}/resubmit",
                    c.ResubmitReply, json={"priority": priority} if priority else {})

    @op
    def submit_workflow(self, tasks: Sequence[c.WorkflowTask], *,
                        on_failure: c.OnFailure | str = c.OnFailure.FAIL, name: str = "",
                        idempotency_key: str = "") -> Call[c.WorkflowReply]:
        """A DAG of tasks (``depends_on`` names other nodes)."""
        return Call("POST", "/v1/workflows", c.WorkflowReply, json=c.SubmitWorkflow(
            tasks=[*tasks], on_failure=c.OnFailure(on_failure), name=name,
            idempotency_key=idempotency_key))

    @op
    def workflow(self, workflow_id: str) -> Call[c.WorkflowRecord]:
        return Call("GET", f"/v1/workflows/{quote(workflow_id, safe='')}", c.WorkflowRecord)

    @op
    def cancel_workflow(self, workflow_id: str, *, reason: str = "") -> Call[c.WorkflowRecord]:
        return Call("POST", f"/v1/workflows/{quote(workflow_id, safe='')}/cancel",
                    c.WorkflowRecord, json={"reason": reason})

    @op
    def types(self) -> Call[c.TaskTypes]:
        """Registered task types with their input JSON schema."""
        return Call("GET", "/v1/task-types", c.TaskTypes)
