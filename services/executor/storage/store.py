"""Reading status records (KV bucket) and scanning streams; writes go through StatusWriter.

A task published straight to ``tasks.queue.*`` by a client has no record until an executor
picks it up; ``get`` then answers from the queue stream itself, so such a task still reads as
``queued``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
from nats.js import JetStreamContext, api
from nats.js.errors import (
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoStreamResponseError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from shared.contracts.executor import (
    FAILURES,
    Priority,
    TaskMessage,
    TaskRecord,
    TaskStatus,
)
from shared.errors import ServiceUnavailable
from shared.kvbuckets import delete_expiring
from shared.logs import swallowed
from shared.subjects import TASK_QUEUE_PREFIX, Stream, task_event_subject

log = logging.getLogger(__name__)

_record = msgspec.json.Decoder(TaskRecord)
_message = msgspec.json.Decoder(TaskMessage)
encode = msgspec.json.Encoder().encode
#: How long the marker of a purged record or undone workflow stays (readers see no record).
MARKER_TTL_S = 60.0


class StatusStore:
    def __init__(self, js: JetStreamContext, kv: KeyValue, bucket: str) -> None:
        self.js = js
        self.kv = kv
        self.bucket = bucket
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
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            # KeyNotFoundError: the server refused the create (the key has a record), then
            # nats-py's look at that record, a direct get answered by a replica that has not
            # applied it yet, found nothing. Either way the record exists.
            return False
        except NoStreamResponseError as e:
            # The status bucket has no leader (an election): the task is queued all the same;
            # its executor writes the record, and a retry with the same key finds the task.
            raise ServiceUnavailable("the task status store has no leader right now; retry "
                                     "with the same idempotency key",
                                     details={"retry_after_s": 1.0}) from e

    async def scan(self, *, updated_since: float | None = None) -> AsyncIterator[TaskRecord]:
        """Every record, or (``updated_since``) those written at or after that time: the
        bucket keeps one message per task (history 1), so a start time reads only the window."""
        async for _, data in scan_stream(self.js, self.stream, f"{self.prefix}>",
                                         last_per_subject=True, since=updated_since):
            with contextlib.suppress(msgspec.DecodeError):
                yield _record.decode(data)

    async def written_or_unfinished(self, since: float) -> list[TaskRecord]:
        """The records written since ``since``, and the unfinished ones written before it
        (their task is still in the queue stream: queued or running all through the window).
        The cost is the window plus the queue, not every record kept."""
        found = {r.id: r async for r in self.scan(updated_since=since)}
        older = [i for i in await self.queued_ids() if i not in found]
        for start in range(0, len(older), 256):  # a backlog: direct gets, 256 in flight
            batch = await asyncio.gather(*(self.get(i) for i in older[start:start + 256]))
            found |= {r.id: r for r in batch if r is not None}
        return list(found.values())

    async def queued_ids(self) -> list[str]:
        """Ids of the tasks in the queue stream (waiting, or held by an executor), from the
        stream's per-subject counts: no message is read."""
        info = await self.js.stream_info(Stream.TASKS, subjects_filter=f"{TASK_QUEUE_PREFIX}.>")
        return [subject.rpartition(".")[2] for subject in info.state.subjects or {}]

    async def failures(self, since: float) -> list[TaskRecord]:
        """The latest failure record of each task that failed since ``since``, read from the
        events stream by time (``events.task.<failed|timed_out|dead>.*``): the cost is the
        failures in the window, however many records the bucket holds."""
        subjects = [task_event_subject(str(s), "*") for s in sorted(FAILURES)]
        latest: dict[str, TaskRecord] = {}
        async for _, data in scan_stream(self.js, Stream.EVENTS, subjects, since=since):
            with contextlib.suppress(msgspec.DecodeError):
                record = _record.decode(data)
                latest[record.id] = record
        return list(latest.values())

    async def purge(self, task_id: str) -> None:
        """Remove a record: a delete marker replaces it at once (history 1) and expires
        ``MARKER_TTL_S`` later, leaving nothing. Not a stream purge: the bucket refuses those
        (``shared.kvbuckets``)."""
        await delete_expiring(self.js, self.bucket, task_id, ttl_s=MARKER_TTL_S)


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


#: Start times are clamped to what a datetime holds: a window of 1e300 s means "everything".
_LATEST_S = 253402300799.0  # 9999-12-31T23:59:59Z


def _utc(epoch_s: float) -> datetime:
    if math.isnan(epoch_s):
        epoch_s = 0.0
    return datetime.fromtimestamp(min(max(epoch_s, 0.0), _LATEST_S), UTC)


async def scan_stream(
    js: JetStreamContext, stream: str, subject: str | list[str], *,
    last_per_subject: bool = False, since: float | None = None, batch: int = 1000,
) -> AsyncIterator[tuple[str, bytes]]:
    """Every message (or the last per subject) of ``stream`` matching ``subject`` (or any of
    several), oldest first, through an ephemeral pull consumer that is deleted afterwards.

    ``since`` starts at the first message stored at or after that time (epoch seconds): the
    server finds it by time, so the scan costs what the window holds, not the whole stream.
    """
    subjects = [subject] if isinstance(subject, str) else subject
    policy = api.DeliverPolicy.ALL
    if since is not None:
        policy = api.DeliverPolicy.BY_START_TIME
    elif last_per_subject:
        policy = api.DeliverPolicy.LAST_PER_SUBJECT
    config = api.ConsumerConfig(
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
        ack_policy=api.AckPolicy.NONE, inactive_threshold=30.0, deliver_policy=policy,
        opt_start_time=(_utc(since) if since is not None else None),
        mem_storage=True)
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
