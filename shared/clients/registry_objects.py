"""Stream one object's bytes into and out of the JetStream object store, any size, in constant
memory, in the layout every NATS client reads and writes: chunks on ``$O.<bucket>.C.<nuid>``,
then one meta message (name, size, chunk count, ``SHA-256=`` digest) on
``$O.<bucket>.M.<base64(name)>``. nats-py's ``ObjectStore.get`` reads what this writes.

Why not ``ObjectStore.put/get``: put needs a synchronous reader (an HTTP body is async) and waits
for each chunk's ack before sending the next; get concatenates bytes chunk by chunk (quadratic)
and keeps the whole object in memory. Here chunks are pipelined with a window of unacked
publishes, and reads are an async iterator that verifies the digest before handing over the
last chunk, so a corrupted artifact is never fully served.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError
from nats.js.errors import NotFoundError

from shared import errors, telemetry
from shared.logs import swallowed

log = logging.getLogger(__name__)

#: What a writer accepts: bytes in memory, a file, or an async stream of chunks (HTTP bodies).
Source = bytes | bytearray | memoryview | Path | IO[bytes] | AsyncIterable[bytes]

DIGEST_PREFIX = "SHA-256="
ROLLUP = {"Nats-Rollup": "sub"}


def stream_name(bucket: str) -> str:
    return f"OBJ_{bucket}"


def chunk_subject(bucket: str, nuid: str) -> str:
    return f"$O.{bucket}.C.{nuid}"


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


def digest_of(sha256_hex: str) -> str:
    """The object store's spelling of a digest: ``SHA-256=`` + urlsafe base64."""
    return DIGEST_PREFIX + base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).decode()


def sha256_of_digest(digest: str) -> str:
    """The hex SHA-256 in an object-store digest, or "" if it is not one."""
    if not digest.upper().startswith(DIGEST_PREFIX):
        return ""
    try:
        return base64.urlsafe_b64decode(digest[len(DIGEST_PREFIX):]).hex()
    except (ValueError, binascii.Error):
        return ""


@dataclass(frozen=True)
class WrittenObject:
    name: str
    nuid: str
    sha256: str
    size_bytes: int
    chunks: int


@dataclass(frozen=True)
class ObjectMeta:
    """The meta message of a live object (what ``get_info`` returns, without nats-py types)."""

    name: str
    nuid: str
    size_bytes: int
    chunks: int
    sha256: str
    deleted: bool = False

    @classmethod
    def parse(cls, data: bytes) -> ObjectMeta:
        raw = json.loads(data)
        return cls(name=raw.get("name", ""), nuid=raw.get("nuid", ""),
                   size_bytes=int(raw.get("size") or 0), chunks=int(raw.get("chunks") or 0),
                   sha256=sha256_of_digest(raw.get("digest") or ""),
                   deleted=bool(raw.get("deleted")))


class ChunkWriter:
    """Publish bytes as chunk messages on one subject, pipelined, hashing as they go.

    Args:
        js, nc: the JetStream context and its connection.
        subject: where the chunks go (an object's chunk subject, or an upload's staging one).
        chunk_bytes: size of each chunk message (capped by the server's max_payload).
        max_bytes: writing more raises ``PayloadTooLarge``.
        window: unacknowledged chunk publishes allowed in flight.
        ack_timeout_s: how long one chunk's acknowledgement may take.
    """

    def __init__(self, js: JetStreamContext, nc: NATS, subject: str, *, chunk_bytes: int,
                 max_bytes: int, window: int = 16, ack_timeout_s: float = 30.0) -> None:
        self.js, self.subject = js, subject
        self.chunk_bytes = max(1024, min(chunk_bytes, nc.max_payload - 1024))
        self.max_bytes = max_bytes
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._acks: deque[asyncio.Future[Any]] = deque()
        self.size_bytes = 0
        self.chunks = 0

    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size_bytes += len(data)
        if self.size_bytes > self.max_bytes:
            raise errors.PayloadTooLarge(
                f"artifact exceeds the limit of {self.max_bytes} bytes",
                details={"max_bytes": self.max_bytes})
        self._hash.update(data)
        self._buffer += data
        while len(self._buffer) >= self.chunk_bytes:
            chunk = bytes(self._buffer[:self.chunk_bytes])
            del self._buffer[:self.chunk_bytes]
            await self._publish(chunk)

    async def _publish(self, chunk: bytes) -> None:
        try:
            self._acks.append(await self.js.publish_async(self.subject, chunk))
            self.chunks += 1
            while len(self._acks) >= self.window:
                await asyncio.wait_for(self._acks.popleft(), self.ack_timeout_s)
        except (NatsError, JsError, TimeoutError) as e:
            raise errors.ServiceUnavailable(f"the stream refused a chunk: {e!r}",
                                            details={"subject": self.subject}) from e

    async def flush(self) -> None:
        """Publish what is buffered and wait until every chunk is acknowledged."""
        if self._buffer:
            await self._publish(bytes(self._buffer))
            self._buffer.clear()
        try:
            while self._acks:
                await asyncio.wait_for(self._acks.popleft(), self.ack_timeout_s)
        except (NatsError, JsError, TimeoutError) as e:
            raise errors.ServiceUnavailable(f"the stream refused a chunk: {e!r}",
                                            details={"subject": self.subject}) from e

    async def settle(self) -> None:
        """After a failure: wait for (or give up on) the chunks still in flight, so nothing
        is stored after whatever cleans up next."""
        pending, self._acks = list(self._acks), deque()
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.ack_timeout_s)
            for ack in late:
                ack.cancel()
        for ack in pending:  # retrieve outcomes so no "exception never retrieved" warning
            if ack.done() and not ack.cancelled():
                ack.exception()


class ObjectWriter:
    """Write one object chunk by chunk; ``close()`` publishes the meta message last, so the
    object exists for readers only once every chunk is acknowledged. Only the registry writes
    objects (``shared.clients.staging`` says why).

    Args:
        js, nc: the JetStream context and its connection.
        bucket, name: where the object goes.
        chunk_bytes, max_bytes: as for ``ChunkWriter``; too many bytes also remove what was
            written.
    """

    def __init__(self, js: JetStreamContext, nc: NATS, bucket: str, name: str, *,
                 chunk_bytes: int, max_bytes: int) -> None:
        self.js, self.bucket, self.name = js, bucket, name
        self.nuid = nc._nuid.next().decode()  # nats-py's own id generator: same id space
        self.chunks = ChunkWriter(js, nc, chunk_subject(bucket, self.nuid),
                                  chunk_bytes=chunk_bytes, max_bytes=max_bytes)
        self.chunk_bytes = self.chunks.chunk_bytes

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.chunks.write(data)
        except errors.QuantopsError:
            await self.abort()
            raise

    async def close(self) -> WrittenObject:
        try:
            await self.chunks.flush()
            await self._publish_meta()
        except (errors.QuantopsError, NatsError, JsError, TimeoutError) as e:
            await self.abort()
            if isinstance(e, errors.QuantopsError):
                raise
            raise errors.ServiceUnavailable(f"object store refused the object: {e!r}",
                                            details={"bucket": self.bucket}) from e
        return WrittenObject(name=self.name, nuid=self.nuid, sha256=self.chunks.sha256(),
                             size_bytes=self.chunks.size_bytes, chunks=self.chunks.chunks)

    async def _publish_meta(self) -> None:
        digest = base64.urlsafe_b64encode(bytes.fromhex(self.chunks.sha256())).decode()
        meta = {"name": self.name, "bucket": self.bucket, "nuid": self.nuid,
                "size": self.chunks.size_bytes, "chunks": self.chunks.chunks,
                "digest": DIGEST_PREFIX + digest, "mtime": datetime.now(UTC).isoformat(),
                "options": {"max_chunk_size": self.chunk_bytes}}
        await self.js.publish(meta_subject(self.bucket, self.name), json.dumps(meta).encode(),
                              headers=dict(ROLLUP))

    async def abort(self) -> None:
        """Drop the chunks sent so far (best effort: the registry's sweep catches the rest).

        Chunks still unacknowledged are waited for first: the stream stores a publish and
        runs a purge on different paths, so purging early could miss chunks stored after it.
        """
        await self.chunks.settle()
        with swallowed(log, "purging the aborted upload"):  # the connection may be why we abort
            await self.js.purge_stream(stream_name(self.bucket), subject=self.chunks.subject)


async def put_object(js: JetStreamContext, nc: NATS, bucket: str, name: str, source: Source, *,
                     chunk_bytes: int, max_bytes: int) -> WrittenObject:
    """Write ``source`` as object ``name``; on any error nothing readable is left behind."""
    writer = ObjectWriter(js, nc, bucket, name, chunk_bytes=chunk_bytes, max_bytes=max_bytes)
    with telemetry.span("artifact upload", {"quantops.bucket": bucket,
                                            "quantops.object": name}) as span:
        try:
            async for piece in pieces(source, writer.chunk_bytes):
                await writer.write(piece)
        except BaseException:
            await writer.abort()
            raise
        written = await writer.close()
        span.set_attribute("quantops.size_bytes", written.size_bytes)
        return written


async def pieces(source: Source, size: int) -> AsyncIterator[bytes | memoryview]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for offset in range(0, len(view), size):
            yield view[offset:offset + size]
    elif isinstance(source, Path):
        with source.open("rb") as f:
            while piece := await asyncio.to_thread(f.read, size):
                yield piece
    elif hasattr(source, "read"):
        while piece := await asyncio.to_thread(source.read, size):
            yield piece
    else:
        async for piece in source:
            if piece:
                yield piece


async def get_meta(js: JetStreamContext, bucket: str, name: str) -> ObjectMeta | None:
    """The live object's meta, or None when there is none (never written, or deleted)."""
    try:
        msg = await js.get_last_msg(stream_name(bucket), meta_subject(bucket, name))
    except NotFoundError:
        return None
    except (NatsError, JsError) as e:
        raise errors.ServiceUnavailable(f"object store unreachable: {e!r}",
                                        details={"bucket": bucket}) from e
    meta = ObjectMeta.parse(msg.data or b"{}")
    return None if meta.deleted else meta


async def open_object(js: JetStreamContext, bucket: str, name: str, *, sha256: str,
                      size_bytes: int, idle_timeout_s: float = 10.0
                      ) -> AsyncGenerator[bytes, None]:
    """The object's chunks, checked against the digest recorded at registration.

    Checked at once (before any byte, so an HTTP response can still fail cleanly): the object
    exists and its meta carries that digest and size; a replaced object fails here. Checked
    while streaming: the bytes hash to that digest. The last chunk is yielded only after that
    check, so a consumer never receives a complete corrupted artifact. Raises
    ``IntegrityError``.
    """
    meta = await get_meta(js, bucket, name)
    if meta is None:
        raise errors.IntegrityError(f"artifact {name} is missing from the object store",
                                    details={"object": name})
    if meta.sha256 != sha256 or meta.size_bytes != size_bytes:
        raise errors.IntegrityError(
            "stored artifact differs from the one registered (digest or size changed)",
            details={"object": name, "expected_sha256": sha256, "stored_sha256": meta.sha256})
    return _chunks(js, bucket, meta, sha256, idle_timeout_s)


async def _chunks(js: JetStreamContext, bucket: str, meta: ObjectMeta, sha256: str,
                  idle_timeout_s: float) -> AsyncGenerator[bytes, None]:
    name, size_bytes = meta.name, meta.size_bytes
    if size_bytes == 0:
        _check(hashlib.sha256(), 0, sha256, 0, name)
        return
    sub = await js.subscribe(chunk_subject(bucket, meta.nuid), ordered_consumer=True,
                             stream=stream_name(bucket))
    try:
        h, seen = hashlib.sha256(), 0
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout_s)
            except TimeoutError as e:
                raise errors.IntegrityError(f"artifact {name} is incomplete: chunks missing",
                                            details={"object": name, "read_bytes": seen}) from e
            h.update(msg.data)
            seen += len(msg.data)
            if seen > size_bytes:
                _check(h, seen, sha256, size_bytes, name)
            if msg.metadata.num_pending == 0:
                break
            yield msg.data
        _check(h, seen, sha256, size_bytes, name)
        yield msg.data
    finally:
        with swallowed(log, "unsubscribing the chunk feed", level=logging.DEBUG):
            await sub.unsubscribe()


def _check(h: Any, seen: int, sha256: str, size_bytes: int, name: str) -> None:
    if seen != size_bytes or h.hexdigest() != sha256:
        raise errors.IntegrityError(
            "artifact bytes do not match the SHA-256 recorded at registration",
            details={"object": name, "expected_sha256": sha256, "read_bytes": seen,
                     "expected_bytes": size_bytes})
