"""Event-stream slots shared by every gateway replica: leases in a JetStream KV bucket.

A principal's slots are the keys ``<principal>.<n>`` for ``n`` below the cap. Opening a stream
``create``s the first absent one, which JetStream grants only for a key that does not exist:
two replicas never hold the same slot, so the cap holds across replicas without a lock or a
count that could race. The bucket's ``max_age`` is the lease's life; each replica renews the
leases it holds every third of it (``update`` at the last revision writes a fresh message), and
deletes a lease when its stream ends. A replica that dies stops renewing: its slots come back
after at most ``ttl_s``.

If the bucket cannot be reached (NATS away, a timeout), a stream is admitted on the replica's
own count alone (``streams.StreamSlots``), with a warning: a stream is worth less than the
guarantee that the gateway keeps serving, and the per-replica cap still bounds what it costs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import (
    APIError,
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from shared.errors import RateLimited
from shared.subjects import Bucket

log = logging.getLogger(__name__)

BUCKET: Final = str(Bucket.STREAM_LEASES)
_STREAM_IN_USE = 10058
#: A bucket that failed to open is not asked again before this: every stream would wait on it.
_RETRY_OPEN_S: Final = 5.0
_UNREACHABLE = (NatsError, APIError, TimeoutError, OSError)


def slot_key(who: str, slot: int) -> str:
    """KV keys allow ``[-/_=.a-zA-Z0-9]``: the name is base64url-encoded."""
    name = base64.urlsafe_b64encode(who.encode()).decode().rstrip("=") or "_"
    return f"{name}.{slot}"


class StreamLeases:
    """Args:
        js: the gateway's JetStream context.
        ttl_s: how long a lease outlives its last renewal (a dead replica's slots come back
            after at most this).
        replicas: replicas of the bucket.
        timeout_s: the longest a stream's opening waits on the bucket before it is admitted on
            the replica's own count.
    """

    def __init__(self, js: JetStreamContext, *, ttl_s: float, replicas: int = 1,
                 timeout_s: float = 2.0) -> None:
        self.js = js
        self.ttl_s = ttl_s
        self.replicas = replicas
        self.timeout_s = timeout_s
        self._kv: KeyValue | None = None
        self._failed_at = -_RETRY_OPEN_S
        self._held: dict[str, int] = {}  # key -> revision
        self._lock = asyncio.Lock()  # renewals and releases of held keys, one at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._value = f"{socket.gethostname()}:{os.getpid()}".encode()

    async def take(self, who: str, max_streams: int) -> Callable[[], None] | None:
        """Take one of ``who``'s slots: its release, None when the bucket cannot be reached
        (admit on the local count), or ``RateLimited`` when every slot is held."""
        kv = await self._bucket()
        if kv is None:
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                key = await self._create_any(kv, who, max_streams)
        except _UNREACHABLE as e:
            log.warning("stream leases unreachable: admitting on this replica's count",
                        extra={"error": repr(e)})
            self._kv, self._failed_at = None, time.monotonic()  # reopen it (deleted?) later
            return None
        if key is None:
            raise RateLimited(
                f"{who} already holds {max_streams} event streams (on all gateway replicas); "
                "close one first",
                details={"open_streams": max_streams, "max_streams": max_streams,
                         "retry_after_s": 5})
        self._start_renewing()
        return lambda: self._spawn(self._release(key))

    async def _create_any(self, kv: KeyValue, who: str, max_streams: int) -> str | None:
        for slot in range(max_streams):
            key = slot_key(who, slot)
            try:
                self._held[key] = await kv.create(key, self._value)
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                continue  # held, by this replica or another (or expiring just now)
            return key
        return None

    async def _bucket(self) -> KeyValue | None:
        if self._kv is not None:
            return self._kv
        if time.monotonic() - self._failed_at < _RETRY_OPEN_S:
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                self._kv = await self._open()
        except _UNREACHABLE as e:
            self._failed_at = time.monotonic()
            log.warning("stream lease bucket unavailable: each replica counts its own streams",
                        extra={"error": repr(e)})
        return self._kv

    async def _open(self) -> KeyValue:
        try:
            return await self.js.create_key_value(
                bucket=BUCKET, history=1, ttl=self.ttl_s, replicas=self.replicas,
                storage=api.StorageType.MEMORY,  # leases of live connections: nothing to keep
                description="quantops gateway: event-stream leases per principal")
        except BadRequestError as e:
            if e.err_code != _STREAM_IN_USE:
                raise
            return await self.js.key_value(BUCKET)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_every(self.ttl_s / 3))

    async def _renew_every(self, interval_s: float) -> None:
        while self._held:
            await asyncio.sleep(interval_s)
            async with self._lock:
                await self._renew()

    async def _renew(self) -> None:
        kv = self._kv
        if kv is None:
            return
        for key, revision in list(self._held.items()):
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._held[key] = await kv.update(key, self._value, last=revision)
            except KeyWrongLastSequenceError:
                # Expired (NATS was away longer than the lease): the stream runs on, uncounted.
                log.warning("stream lease lost", extra={"key": key})
                self._held.pop(key, None)
            except _UNREACHABLE as e:
                log.warning("stream lease not renewed", extra={"key": key, "error": repr(e)})

    async def _release(self, key: str) -> None:
        async with self._lock:
            revision = self._held.pop(key, None)
            if revision is None or self._kv is None:
                return
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._kv.delete(key, last=revision)
            except (*_UNREACHABLE, KeyWrongLastSequenceError) as e:  # it expires by itself
                log.info("stream lease left to expire", extra={"key": key, "error": repr(e)})

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop (interpreter exit): the lease expires by itself
            work.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Give back every lease this replica holds and stop renewing."""
        if self._renewer is not None:
            self._renewer.cancel()
        for key in list(self._held):
            await self._release(key)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
