"""Reading status records (KV bucket) and scanning streams; writes go through StatusWriter.

A task published straight to ``tasks.queue.*`` by a client has no record until an executor
picks it up; ``get`` then answers from the queue stream itself, so such a task still reads as
``queued``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import msgspec
from nats.js import JetStreamContext, api
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from shared.contracts.executor import (
    Priority,
    TaskMessage,
    TaskRecord,
    TaskStatus,
)
from shared.logs import swallowed
from shared.subjects import TASK_QUEUE_PREFIX, Stream

log = logging.getLogger(__name__)

_record = msgspec.json.Decoder(TaskRecord)
_message = msgspec.json.Decoder(TaskMessage)
encode = msgspec.json.Encoder().encode


class StatusStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue, bucket: str) -> None:
        self.js = js
        self.kv = kv
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."

    async def get(self, task_id: str) -> TaskRecord | None:
        try:
            entry = await self.kv.get(task_id)
        except KeyNotFoundError:
            return None
        return _record.decode(entry.value) if entry.value else None

    async def get_or_queued(self, task_id: str) -> TaskRecord | None:
        """The record, or one built from the task's message if it is still in the queue."""
        found = await self.get(task_id)
        if found is not None:
            return found
        queued = await find_queued(self.js, task_id)
        if queued is None:
            # It may have finished between the two reads: its record is written before its
            # message is acked (and so removed), so a second look finds it.
            return await self.get(task_id)
        priority, seq_time, tm = queued[0], queued[2], queued[3]
        return TaskRecord(id=task_id, type=tm.type, status=TaskStatus.QUEUED, priority=priority,
                          timeout_s=tm.timeout_s or 0.0, max_attempts=tm.max_attempts or 0,
                          submitted_at=tm.submitted_at or seq_time, updated_at=seq_time,
                          workflow_id=tm.workflow_id, node=tm.node, parent_id=tm.parent_id,
                          idempotency_key=tm.idempotency_key)

    async def create(self, record: TaskRecord) -> bool:
        """Write ``record`` only if the task has none yet (a queued record must never overwrite
        what an executor already wrote)."""
        try:
            await self.kv.create(record.id, encode(record))
            return True
        except KeyWrongLastSequenceError:
            return False

    async def scan(self) -> AsyncIterator[TaskRecord]:
        async for _, data in scan_stream(self.js, self.stream, f"{self.prefix}>",
                                         last_per_subject=True):
            with contextlib.suppress(msgspec.DecodeError):
                yield _record.decode(data)

    async def purge(self, task_id: str) -> None:
        """Remove a record and its history entirely (no delete marker left behind)."""
        await self.js.purge_stream(self.stream, subject=self.prefix + task_id)


async def find_queued(
    js: JetStreamContext, task_id: str
) -> tuple[Priority, int, float, TaskMessage] | None:
    """The task's message in the queue stream: (priority, sequence, time, message)."""
    try:
        raw = await js.get_msg(Stream.TASKS, subject=f"{TASK_QUEUE_PREFIX}.*.{task_id}")
    except NotFoundError:
        return None
    if raw.subject is None or raw.seq is None:
        return None
    priority = Priority(raw.subject.split(".")[-2])
    when = raw.time.timestamp() if raw.time else time.time()
    return priority, raw.seq, when, _message.decode(raw.data or b"{}")


async def scan_stream(
    js: JetStreamContext, stream: str, subject: str, *, last_per_subject: bool = False,
    batch: int = 1000,
) -> AsyncIterator[tuple[str, bytes]]:
    """Every message (or the last per subject) of ``stream`` matching ``subject``, oldest
    first, through an ephemeral pull consumer that is deleted afterwards."""
    config = api.ConsumerConfig(
        filter_subject=subject, ack_policy=api.AckPolicy.NONE, inactive_threshold=30.0,
        deliver_policy=(api.DeliverPolicy.LAST_PER_SUBJECT if last_per_subject
                        else api.DeliverPolicy.ALL), mem_storage=True)
    info = await js.add_consumer(stream, config)
    try:
        remaining = info.num_pending or 0
        psub = await js.pull_subscribe_bind(info.name, stream=stream)
        try:
            while remaining > 0:
                msgs = await psub.fetch(min(batch, remaining), timeout=5)
                for m in msgs:
                    yield m.subject, m.data
                remaining = msgs[-1].metadata.num_pending if msgs else 0
        finally:
            with swallowed(log, "unsubscribing the scan", level=logging.DEBUG):
                await psub.unsubscribe()
    finally:
        with swallowed(log, "deleting the scan's consumer", level=logging.DEBUG):
            await js.delete_consumer(stream, info.name)
