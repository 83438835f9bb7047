"""Cancelling a task from the request side (``executor.tasks.cancel``).

1. Already finished: nothing to do, the reply says how it ended.
2. Still in the queue (waiting, or waiting for a retry): its message is deleted from the work
   queue, so no executor can start it, and it is recorded ``cancelled``.
3. Either way ``events.task.cancel_requested.<id>`` goes to every executor: one holding the
   task drops it, one running it stops it (killing its worker process) and records
   ``cancelled``. The reply waits up to ``wait_s`` for that record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.executor.api.workflows import Workflows
from services.executor.storage.statuswriter import StatusWriter
from services.executor.storage.store import StatusStore, find_queued
from shared.contracts.executor import (
    CANCEL_REQUESTED,
    TERMINAL,
    CancelReply,
    CancelRequested,
    TaskError,
    TaskRecord,
    TaskStatus,
    task_event_subject,
)
from shared.errors import NotFound
from shared.logs import swallowed
from shared.subjects import Stream

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(TaskRecord).decode


class Canceller:
    def __init__(self, nc: NATS, js: JetStreamContext, store: StatusStore,
                 writer: StatusWriter, workflows: Workflows, *, wait_s: float = 3.0) -> None:
        self.nc = nc
        self.js = js
        self.store = store
        self.writer = writer
        self.workflows = workflows
        self.wait_s = wait_s

    async def cancel(self, task_id: str, reason: str = "") -> CancelReply:
        record = await self.store.get_or_queued(task_id)
        if record is None:
            raise NotFound(f"no task {task_id}", details={"task_id": task_id})
        if record.status in TERMINAL:
            return CancelReply(task_id=task_id, cancelled=False, record=record)
        finished: asyncio.Queue[TaskRecord] = asyncio.Queue()

        async def on_event(msg: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError):
                rec = _decode_record(msg.data)
                if rec.status in TERMINAL:
                    finished.put_nowait(rec)

        # Listen before announcing, so the executor's answer cannot be missed.
        sub = await self.nc.subscribe(task_event_subject("*", task_id), cb=on_event)
        try:
            deleted = await self._delete_queued(task_id)
            await self.nc.publish(task_event_subject(CANCEL_REQUESTED, task_id), _encode(
                CancelRequested(task_id=task_id, reason=reason, at=time.time())))
            if deleted and record.status == TaskStatus.QUEUED:
                return CancelReply(task_id=task_id, cancelled=True,
                                   record=await self._record_cancelled(record, reason))
            return await self._await_outcome(task_id, finished)
        finally:
            with swallowed(log, "unsubscribing from the task's outcome", level=logging.DEBUG):
                await sub.unsubscribe()

    async def _delete_queued(self, task_id: str) -> bool:
        found = await find_queued(self.js, task_id)
        if found is None:
            return False
        try:
            return bool(await self.js.delete_msg(Stream.TASKS, found[1]))
        except Exception:  # acked in the meantime: it started or finished
            return False

    async def _record_cancelled(self, record: TaskRecord, reason: str) -> TaskRecord:
        now = time.time()
        cancelled = msgspec.structs.replace(
            record, status=TaskStatus.CANCELLED, finished_at=now, updated_at=now, retry_at=None,
            error=TaskError(type="cancelled", message=reason or "cancelled while queued"))
        await self.writer.write_and_wait(record.id, TaskStatus.CANCELLED, _encode(cancelled))
        if cancelled.workflow_id:  # no executor will run it, so none would advance the DAG
            await self.workflows.on_task_finished(cancelled)
        return cancelled

    async def _await_outcome(self, task_id: str,
                             finished: asyncio.Queue[TaskRecord]) -> CancelReply:
        with contextlib.suppress(TimeoutError):
            rec = await asyncio.wait_for(finished.get(), self.wait_s)
            return CancelReply(task_id=task_id, cancelled=rec.status == TaskStatus.CANCELLED,
                               record=rec)
        current = await self.store.get(task_id)
        return CancelReply(task_id=task_id,
                           cancelled=current is not None and current.status == TaskStatus.CANCELLED,
                           record=current)
