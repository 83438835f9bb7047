"""Putting tasks on the queue: validation, idempotency and the queue-length guard.

The guard is the stream itself: ``QUANTOPS_TASKS`` has ``max_msgs = max_queue`` with
``discard=new``, so a publish above the limit is refused by the server, atomically, whoever
publishes (this service, a workflow, a client publishing directly). Nothing is written before
the publish succeeds, so a refused submission leaves nothing behind.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError

from services.executor.storage.store import StatusStore
from services.executor.tasktypes import TaskRegistry
from shared import telemetry
from shared.contracts.executor import (
    Priority,
    SubmitReply,
    SubmitTask,
    TaskMessage,
    TaskRecord,
    TaskStatus,
    id_for_key,
    new_id,
    queue_subject,
    task_event_subject,
)
from shared.errors import QueueFull, ServiceUnavailable
from shared.settings import ExecutorSettings
from shared.subjects import Header
from shared.tasks import TaskType

_encode = msgspec.json.Encoder().encode
_QUEUE_FULL = 10077  # JSStreamStoreFailedF "maximum messages exceeded"


class Submitter:
    def __init__(self, nc: NATS, js: JetStreamContext, registry: TaskRegistry,
                 store: StatusStore, settings: ExecutorSettings) -> None:
        self.nc = nc
        self.js = js
        self.registry = registry
        self.store = store
        self.settings = settings

    def message_for(self, req: SubmitTask, *, principal: str = "", role: str = "",
                    workflow_id: str = "",
                    node: str = "", parents: dict[str, str] | None = None,
                    resubmitted_from: str = "") -> TaskMessage:
        """Validate type and input (raises InvalidRequest) and build the queue message."""
        value = self.registry.convert_input(req.type, req.input)
        return TaskMessage(
            type=req.type, input=msgspec.Raw(_encode(value)), timeout_s=req.timeout_s,
            max_attempts=req.max_attempts, backoff_s=req.backoff_s, submitted_at=time.time(),
            idempotency_key=req.idempotency_key, parent_id=req.parent_id,
            workflow_id=workflow_id, node=node, parents=parents or {},
            resubmitted_from=resubmitted_from, principal=principal, role=role)

    async def submit(self, req: SubmitTask, *, principal: str = "", role: str = "",
                     headers: dict[str, str] | None = None) -> SubmitReply:
        tm = self.message_for(req, principal=principal, role=role)
        task_id = id_for_key(req.idempotency_key) if req.idempotency_key else new_id()
        if req.idempotency_key:
            existing = await self.store.get(task_id)
            if existing is not None:  # seen before, even beyond the dedupe window
                return SubmitReply(task_id=task_id, status=existing.status,
                                   priority=existing.priority, duplicate=True)
        duplicate = await self.enqueue(task_id, req.priority, tm,
                                       msg_id=req.idempotency_key or task_id, headers=headers)
        return SubmitReply(task_id=task_id, status=TaskStatus.QUEUED, priority=req.priority,
                           duplicate=duplicate)

    async def enqueue(self, task_id: str, priority: Priority, tm: TaskMessage, *, msg_id: str,
                      headers: dict[str, str] | None = None) -> bool:
        """Queue a task and record it ``queued`` (with its event); True if the server had
        seen ``msg_id`` already (then nothing else happens)."""
        duplicate = await self._publish(task_id, priority, tm, msg_id=msg_id, headers=headers)
        if not duplicate:
            timeout_s, attempts = limits(self.registry.find(tm.type), tm, self.settings)
            record = queued_record(task_id, priority, tm, timeout_s, attempts)
            # create, not put: an executor may already have written a later status.
            if await self.store.create(record):
                await self.nc.publish(task_event_subject(TaskStatus.QUEUED, task_id),
                                      _encode(record))
        return duplicate

    async def _publish(self, task_id: str, priority: Priority, tm: TaskMessage, *,
                       msg_id: str, headers: dict[str, str] | None) -> bool:
        out = dict(headers or {})
        out.pop(Header.AUTH.value, None)  # the task runs with tm.role; no token is stored
        out[Header.MSG_ID.value] = msg_id
        telemetry.inject(out)  # the execution span continues the submitter's trace
        try:
            ack = await self.js.publish(queue_subject(priority, task_id), _encode(tm),
                                        headers=out)
        except APIError as e:
            if e.err_code == _QUEUE_FULL:
                raise self.queue_full() from e
            raise ServiceUnavailable(f"task queue refused the task: {e.description}",
                                     details={"code": e.err_code}) from e
        except NoStreamResponseError as e:
            # No server answered for the stream: on a cluster, while its Raft group elects a
            # leader. Nothing was stored; the same idempotency key may be retried.
            raise ServiceUnavailable("the task queue has no leader right now; nothing was "
                                     "queued, retry shortly",
                                     details={"retry_after_s": 1.0}) from e
        return bool(ack.duplicate)

    def queue_full(self) -> QueueFull:
        limit = self.settings.max_queue
        retry = self.settings.queue_full_retry_after_s
        return QueueFull(
            f"queue full: {limit} tasks are already waiting (QUANTOPS_EXECUTOR_MAX_QUEUE); "
            f"nothing was queued, retry in {retry:g} s",
            details={"limit": limit, "retry_after_s": retry})


def limits(task_type: TaskType[Any] | None, tm: TaskMessage,
           settings: ExecutorSettings) -> tuple[float, int]:
    """Timeout and attempts of a task: its submission's, else its type's, else the defaults."""
    timeout_s = tm.timeout_s or (task_type.timeout_s if task_type else None)
    attempts = tm.max_attempts or (task_type.max_attempts if task_type else None)
    return timeout_s or settings.default_timeout_s, attempts or settings.default_max_attempts


def queued_record(task_id: str, priority: Priority, tm: TaskMessage, timeout_s: float,
                  max_attempts: int) -> TaskRecord:
    return TaskRecord(
        id=task_id, type=tm.type, status=TaskStatus.QUEUED, priority=priority,
        timeout_s=timeout_s, max_attempts=max_attempts,
        submitted_at=tm.submitted_at, updated_at=time.time(), workflow_id=tm.workflow_id,
        node=tm.node, parent_id=tm.parent_id, idempotency_key=tm.idempotency_key,
        resubmitted_from=tm.resubmitted_from, principal=tm.principal)
