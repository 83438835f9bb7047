"""HTTP routes of the executor: tasks, dead letters, workflows, task types, and a live feed of
status changes as server-sent events. Each route is one NATS call (``shared.clients.executor``),
except the SSE feeds, which relay ``events.task.*`` as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from services.gateway.forward import bus_of, nats_headers
from services.gateway.routes.conventions import ADMIN, OPERATOR, STREAM, VIEWER, Cursor, Limit
from services.gateway.streams import READY, limited
from shared.bus import flush
from shared.bytequeue import ByteQueue
from shared.clients.executor import ExecutorClient
from shared.contracts import executor as c
from shared.logs import swallowed

log = logging.getLogger(__name__)

#: Event-stream routes (``services.gateway.documented`` declares them text/event-stream).
TAGS = ["tasks"]
BODY = 4 * 1024 * 1024
KEEPALIVE_S = 15.0

TaskId = Annotated[str, PathParameter(description="task id", pattern=r"^[A-Za-z0-9_-]{1,128}\Z")]
WorkflowId = Annotated[str, PathParameter(description="workflow id",
                                          pattern=r"^[A-Za-z0-9_-]{1,128}\Z")]
Text = Annotated[str, QueryParameter(max_length=128)]
Statuses = Annotated[list[c.TaskStatus] | None, QueryParameter(description="repeatable")]
Epoch = Annotated[float | None, QueryParameter(description="epoch seconds, submitted_at bound")]


class SubmitBody(c.SubmitTask, forbid_unknown_fields=True, frozen=True):
    """``POST /v1/tasks``."""


class WorkflowBody(c.SubmitWorkflow, forbid_unknown_fields=True, frozen=True):
    """``POST /v1/workflows``."""


class ReasonBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class PurgeBody(c.PurgeTasks, forbid_unknown_fields=True, frozen=True):
    """``POST /v1/tasks/purge``."""


class ResubmitBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    priority: c.Priority | None = None


def client_of(request: Request[Any, Any, Any]) -> ExecutorClient:
    return ExecutorClient(bus_of(request), headers=nats_headers(request))


@post("/v1/tasks", opt=OPERATOR, tags=TAGS, request_max_body_size=BODY,
      summary="Submit a task (202; 200 when the idempotency key names an existing task; 429 "
              "with Retry-After when the queue is full)")
async def submit(request: Request[Any, Any, Any],
                 data: JSONBody[SubmitBody]) -> Response[c.SubmitReply]:
    reply = await client_of(request).submit(
        data.type, data.input, priority=data.priority, timeout_s=data.timeout_s,
        max_attempts=data.max_attempts, backoff_s=data.backoff_s,
        idempotency_key=data.idempotency_key)
    return Response(reply, status_code=200 if reply.duplicate else 202,
                    headers={"Location": f"/v1/tasks/{reply.task_id}"})


@get("/v1/tasks", opt=VIEWER, tags=TAGS,
     summary="Tasks, newest first, filtered by status (repeatable), type, workflow and time; "
             "without since, those written in the last QUANTOPS_EXECUTOR_LIST_WINDOW_S (a day)")
async def list_tasks(request: Request[Any, Any, Any], status: Statuses = None, type: Text = "",
                     workflow_id: Text = "", since: Epoch = None, until: Epoch = None,
                     limit: Limit = 100, cursor: Cursor = "") -> c.TaskPage:
    return await client_of(request).list(status=status or [], type=type, since=since,
                                         until=until, workflow_id=workflow_id, limit=limit,
                                         cursor=cursor)


@get("/v1/tasks/failed-summary", opt=VIEWER, tags=TAGS,
     summary="Failed, timed-out and dead tasks over a window, by type and error class")
async def failed_summary(request: Request[Any, Any, Any],
                         window_s: Annotated[float, QueryParameter(gt=0)] = 3600.0
                         ) -> c.FailedSummary:
    return await client_of(request).failed_summary(window_s)


@get("/v1/tasks/activity", opt=VIEWER, tags=TAGS,
     summary="Throughput and queue depth over time: tasks submitted, started, succeeded, "
             "failed and cancelled per bucket, queued and running at each bucket's end")
async def activity(request: Request[Any, Any, Any],
                   window_s: Annotated[float, QueryParameter(gt=0, le=7 * 86400)] = 3600.0,
                   bucket_s: Annotated[float, QueryParameter(ge=1, le=86400)] = 60.0
                   ) -> c.TaskActivity:
    return await client_of(request).activity(window_s, bucket_s)


@get("/v1/tasks/queue", opt=VIEWER, tags=TAGS,
     summary="Tasks waiting and held by executors now, per priority: JetStream's consumer "
             "counters, so the cost does not grow with the records kept")
async def queue(request: Request[Any, Any, Any]) -> c.QueueDepth:
    return await client_of(request).queue()


@post("/v1/tasks/purge", opt=ADMIN, tags=TAGS, status_code=200,
      summary="Delete finished task records older than older_than_s")
async def purge(request: Request[Any, Any, Any], data: JSONBody[PurgeBody]) -> c.PurgeReply:
    return await client_of(request).purge(data.older_than_s, status=data.status)


@get("/v1/tasks/{task_id:str}", opt=VIEWER, tags=TAGS, summary="One task's status record")
async def get_task(request: Request[Any, Any, Any], task_id: TaskId) -> c.TaskRecord:
    return await client_of(request).get(task_id)


@post("/v1/tasks/{task_id:str}/cancel", opt=OPERATOR, tags=TAGS, status_code=200,
      summary="Cancel a queued or running task (cancelled=false if it had already finished)")
async def cancel(request: Request[Any, Any, Any], task_id: TaskId,
                 data: JSONBody[ReasonBody | None] = None) -> c.CancelReply:
    return await client_of(request).cancel(task_id, reason=data.reason if data else "")


@get("/v1/tasks/{task_id:str}/events", opt=STREAM, tags=TAGS,
     summary="Server-sent events: the task's record now, then each change until it finishes")
async def task_events(request: Request[Any, Any, Any], task_id: TaskId) -> ServerSentEvent:
    client = client_of(request)
    first = await client.get(task_id)  # 404 before the stream starts
    feed = _feed(request, c.task_event_subject("*", task_id), first=first)
    return ServerSentEvent(await limited(request, feed))


@get("/v1/task-events", opt=STREAM, tags=TAGS,
     summary="Server-sent events: every task status change, optionally of one type or status")
async def all_task_events(request: Request[Any, Any, Any], type: Text = "",
                          status: Statuses = None) -> ServerSentEvent:
    wanted = {str(s) for s in status or []}
    return ServerSentEvent(await limited(request, _feed(
        request, c.task_event_subject("*", "*"), type_=type, statuses=wanted, follow=True)))


async def _feed(request: Request[Any, Any, Any], subject: str, *,
                first: c.TaskRecord | None = None, type_: str = "",
                statuses: set[str] | None = None, follow: bool = False
                ) -> AsyncIterator[ServerSentEventMessage]:
    """Relay task events; a single task's feed ends with its final record."""
    queue: ByteQueue[bytes] = ByteQueue(request.app.state.settings.gateway.stream_buffer_bytes)
    decode = msgspec.json.Decoder(c.TaskRecord).decode

    async def on_event(msg: Any) -> None:
        queue.put_nowait(msg.data, len(msg.data))  # a slow reader drops, never blocks NATS

    nc = bus_of(request).nc
    sub = await nc.subscribe(subject, cb=on_event)
    await flush(nc)
    try:
        yield READY  # every change from here on is delivered
        if first is not None:
            yield _message(first)
            if first.status in c.TERMINAL:
                return
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            with contextlib.suppress(msgspec.DecodeError):
                rec = decode(data)
                if (type_ and rec.type != type_) or (statuses and rec.status not in statuses):
                    continue
                yield _message(rec)
                if not follow and rec.status in c.TERMINAL:
                    return
    finally:
        with swallowed(log, "unsubscribing the task event feed", level=logging.DEBUG):
            await sub.unsubscribe()


def _message(rec: c.TaskRecord) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(rec).decode(), event=str(rec.status),
                                  id=f"{rec.id}:{rec.updated_at}")


@get("/v1/dead-letters", opt=VIEWER, tags=TAGS,
     summary="Tasks that exhausted their attempts, newest first, with their last error")
async def dead_letters(request: Request[Any, Any, Any], type: Text = "", limit: Limit = 100,
                       cursor: Cursor = "") -> c.DeadPage:
    return await client_of(request).dead_letters(type=type, limit=limit, cursor=cursor)


@post("/v1/dead-letters/{task_id:str}/resubmit", opt=OPERATOR, tags=TAGS, status_code=202,
      summary="Queue a dead task again as a new task (the dead letter is removed)")
async def resubmit_dead(request: Request[Any, Any, Any], task_id: TaskId,
                        data: JSONBody[ResubmitBody | None] = None) -> c.ResubmitReply:
    priority = data.priority if data and data.priority else None
    return await client_of(request).resubmit_dead(task_id, priority=priority)


@post("/v1/workflows", opt=OPERATOR, tags=TAGS, request_max_body_size=BODY,
      summary="Submit a DAG of tasks (depends_on); cycles and unknown references are refused")
async def submit_workflow(request: Request[Any, Any, Any],
                          data: JSONBody[WorkflowBody]) -> Response[c.WorkflowReply]:
    reply = await client_of(request).submit_workflow(
        data.tasks, on_failure=data.on_failure, name=data.name,
        idempotency_key=data.idempotency_key)
    return Response(reply, status_code=200 if reply.duplicate else 202,
                    headers={"Location": f"/v1/workflows/{reply.workflow.id}"})


@get("/v1/workflows/{workflow_id:str}", opt=VIEWER, tags=TAGS,
     summary="A workflow's status and each node's")
async def get_workflow(request: Request[Any, Any, Any],
                       workflow_id: WorkflowId) -> c.WorkflowRecord:
    return await client_of(request).get_workflow(workflow_id)


@post("/v1/workflows/{workflow_id:str}/cancel", opt=OPERATOR, tags=TAGS, status_code=200,
      summary="Cancel a running workflow: pending nodes never start, running ones stop")
async def cancel_workflow(request: Request[Any, Any, Any], workflow_id: WorkflowId,
                          data: JSONBody[ReasonBody | None] = None) -> c.WorkflowRecord:
    return await client_of(request).cancel_workflow(workflow_id,
                                                    reason=data.reason if data else "")


@get("/v1/task-types", opt=VIEWER, tags=TAGS,
     summary="Registered task types with their input JSON schema")
async def task_types(request: Request[Any, Any, Any]) -> c.TaskTypes:
    return await client_of(request).types()


ROUTES = [submit, list_tasks, failed_summary, activity, queue, purge, get_task, cancel, task_events,
          all_task_events, dead_letters, resubmit_dead, submit_workflow, get_workflow,
          cancel_workflow, task_types]
