"""Status records written in pipelined batches, coalesced per task, acked only once durable.

Every status change goes through ``write``. While one batch is on its way to the KV bucket
(published to ``$KV.<bucket>.<id>`` back to back, all PubAcks awaited together), newer changes queue
up; if a task changes twice before its batch leaves (``running`` then ``succeeded`` for a
sub-millisecond task), only the latest record is written: the final record keeps every timing,
so no information is lost, only a write. On an idle system each change leaves at once.

A change may carry ``then``: what to do once the record is durable (ack, nak or term the task
message). That is the rule that makes a crash safe: a task message is never acked before its
final status is on disk. A batch that fails (NATS down) is retried, older-than-pending records
merged into the newer ones, until it succeeds or the writer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services.executor import metrics
from shared.contracts.executor import TERMINAL, task_event_subject
from shared.logs import swallowed

log = logging.getLogger(__name__)

_FINAL = frozenset(str(s) for s in TERMINAL)
Then = Callable[[], Awaitable[Any] | None]
#: A record, or a function building it: a record superseded before its batch leaves is never
#: built (the ``running`` record of a sub-millisecond task).
Data = bytes | Callable[[], bytes]


def describe(e: BaseException) -> str:
    """``TimeoutError`` and some nats-py errors print as empty strings."""
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _Acks:
    """The PubAcks of one batch, matched by reply token: a counter, not a future per write."""

    __slots__ = ("done", "number", "remaining", "state")

    def __init__(self, number: int, size: int) -> None:
        self.number = number
        self.state = bytearray(size)  # 0 waiting, 1 stored, 2 refused
        self.remaining = size
        self.done = asyncio.Event()
        if not size:
            self.done.set()


class _Pending:
    __slots__ = ("data", "done", "status", "then")

    def __init__(self, status: str, data: Data) -> None:
        self.status = status
        self.data = data
        self.then: list[Then] = []
        self.done: list[asyncio.Future[None]] = []


class StatusWriter:
    """Coalescing, batching writer of status records and their events.

    Args:
        bucket: the KV bucket (``$KV.<bucket>.<task_id>`` is written directly).
        timeout_s: how long a batch may wait for its PubAcks before it is retried.
        final_ttl_s: a final record (succeeded, failed...) carries this ``Nats-TTL``, so the
            server removes it that long after the task finished; None: kept until purged.
    """

    def __init__(self, nc: NATS, bucket: str, *, timeout_s: float = 5.0,
                 max_batch: int = 2048, final_ttl_s: float | None = None) -> None:
        self.nc = nc
        self._final_headers = ({"Nats-TTL": f"{math.ceil(final_ttl_s)}s"}
                               if final_ttl_s else None)
        self.prefix = f"$KV.{bucket}."
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self._pending: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._inbox = ""
        self._batches = 0
        self._acks: _Acks | None = None

    async def start(self) -> None:
        # One wildcard inbox for every PubAck: "<inbox>.<batch>-<index>".
        self._inbox = self.nc.new_inbox()
        await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_ack,
                                pending_msgs_limit=1_000_000)
        self._task = asyncio.create_task(self._run(), name="status-writer")

    async def _on_ack(self, msg: Msg) -> None:
        acks = self._acks
        if acks is None:
            return
        number, _, index = msg.subject.rpartition(".")[2].partition("-")
        i = int(index)
        if int(number) != acks.number or acks.state[i]:
            return  # a late answer to an abandoned batch
        # A PubAck is {"stream":...,"seq":...}; a refusal carries "error"; no responders
        # comes back empty with a status header.
        stored = bool(msg.data) and b'"error"' not in msg.data
        acks.state[i] = 1 if stored else 2
        acks.remaining -= 1
        if acks.remaining == 0:
            acks.done.set()

    def __len__(self) -> int:
        return len(self._pending)

    def write(self, task_id: str, status: str, data: Data, then: Then | None = None) -> None:
        """Queue ``data`` as the record of ``task_id``; ``then`` runs once it is durable."""
        entry = self._pending.get(task_id)
        if entry is None:
            entry = self._pending[task_id] = _Pending(status, data)
        else:
            entry.status, entry.data = status, data
        if then is not None:
            entry.then.append(then)
        self._idle.clear()
        self._wake.set()

    async def write_and_wait(self, task_id: str, status: str, data: bytes) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.write(task_id, status, data)
        self._pending[task_id].done.append(fut)
        await fut

    async def _run(self) -> None:
        while not self._closed or self._pending:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            failed = await self._send(batch)
            if failed:
                self._requeue(failed)
                await asyncio.sleep(0.5)

    def _take(self) -> dict[str, _Pending]:
        if len(self._pending) <= self.max_batch:
            batch, self._pending = self._pending, {}
            return batch
        keys = list(self._pending)[: self.max_batch]
        return {k: self._pending.pop(k) for k in keys}

    async def _send(self, batch: dict[str, _Pending]) -> dict[str, _Pending]:
        """Write a batch (pipelined: all published, then all PubAcks awaited); returns the
        entries that did not make it."""
        self._batches += 1
        acks = self._acks = _Acks(self._batches, len(batch))
        reply = f"{self._inbox}.{self._batches}-"
        items = list(batch.items())
        try:
            for i, (task_id, entry) in enumerate(items):
                if not isinstance(entry.data, bytes):
                    entry.data = entry.data()
                headers = self._final_headers if entry.status in _FINAL else None
                await self.nc.publish(self.prefix + task_id, entry.data, reply=f"{reply}{i}",
                                      headers=headers)
            await asyncio.wait_for(acks.done.wait(), self.timeout_s)
        except Exception as e:  # disconnected, or no answer in time: retry what is missing
            # str() of a timeout is empty: name the exception and say how much is missing.
            log.warning("status batch incomplete: %d of %d records unacknowledged after %s: %s",
                        acks.remaining, len(items), self.timeout_s, describe(e))
        finally:
            self._acks = None
        failed: dict[str, _Pending] = {}
        for i, (task_id, entry) in enumerate(items):
            if acks.state[i] == 1:
                await self._after(task_id, entry)
            else:
                failed[task_id] = entry
        if failed:
            metrics.STATUS_WRITE_ERRORS.inc(len(failed))
        return failed

    async def _after(self, task_id: str, entry: _Pending) -> None:
        # Events are facts about durable records, so they follow the write, never precede it.
        with swallowed(log, "publishing a task event"):
            data = entry.data if isinstance(entry.data, bytes) else entry.data()
            await self.nc.publish(task_event_subject(entry.status, task_id), data)
        for then in entry.then:
            try:
                result = then()
                if result is not None:
                    await result
            except Exception:
                log.exception("after-write action failed", extra={"task_id": task_id})
        for fut in entry.done:
            if not fut.done():
                fut.set_result(None)

    def _requeue(self, failed: dict[str, _Pending]) -> None:
        for task_id, old in failed.items():
            newer = self._pending.get(task_id)
            if newer is None:
                self._pending[task_id] = old
            else:  # a newer record supersedes; the old one's actions wait for it
                newer.then[:0] = old.then
                newer.done[:0] = old.done

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or the timeout passes)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def close(self, timeout_s: float = 10.0) -> None:
        self._closed = True
        self._wake.set()
        await self.flush(timeout_s)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
