"""The registry's side of the object store: create the bucket, check an uploaded object, delete
objects whole, and enumerate what is stored (for the orphan sweep and health).

Object names are generated (``artifacts/<upload id>``), never built from what a caller sends.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StorageType
from nats.js.errors import Error as JsError
from nats.js.errors import NotFoundError

from shared import errors
from shared.clients.registry_objects import (
    ObjectMeta,
    chunk_subject,
    get_meta,
    meta_subject,
    put_object,
    stream_name,
)
from shared.clients.staging import staged_chunks, staged_count
from shared.logs import swallowed
from shared.subjects import Stream

log = logging.getLogger(__name__)
T = TypeVar("T")

PICKLE_PROTOCOLS = range(2, 6)
ZIP_MAGIC = b"PK\x03\x04"
LIST_TIMEOUT_S = 10.0


def object_name(upload_id: str) -> str:
    return f"artifacts/{upload_id}"


class ArtifactStore:
    """One object-store bucket, addressed through raw JetStream calls on its stream.

    Args:
        nc, js: the service's connection and JetStream context.
        bucket: the object-store bucket (``Bucket.ARTIFACTS``).
        replicas: stream replicas when the bucket is created (``Settings.stream_replicas``).
    """

    def __init__(self, nc: NATS, js: JetStreamContext, bucket: str, *, replicas: int = 1
                 ) -> None:
        self.nc, self.js, self.bucket, self.replicas = nc, js, bucket, replicas
        self.stream = stream_name(bucket)

    async def open(self) -> None:
        """Create the bucket unless it exists (idempotent, safe to race with another start)."""
        try:
            await self.js.stream_info(self.stream)
            return
        except NotFoundError:
            pass
        try:
            await self.js.create_object_store(
                bucket=self.bucket, storage=StorageType.FILE, replicas=self.replicas,
                description="quantops model artifacts (owned by the registry)")
        except JsError as e:
            if "already in use" not in str(e):
                raise
        log.info("object store bucket created", extra={"bucket": self.bucket})

    async def meta(self, name: str) -> ObjectMeta | None:
        return await get_meta(self.js, self.bucket, name)

    async def put(self, name: str, data: bytes, *, chunk_bytes: int, max_bytes: int
                  ) -> ObjectMeta:
        """Store bytes the registry received inline (same layout as client uploads)."""
        written = await put_object(self.js, self.nc, self.bucket, name, data,
                                   chunk_bytes=chunk_bytes, max_bytes=max_bytes)
        return ObjectMeta(name=name, nuid=written.nuid, size_bytes=written.size_bytes,
                          chunks=written.chunks, sha256=written.sha256)

    async def assemble(self, staged: str, name: str, *, chunk_bytes: int, max_bytes: int
                       ) -> ObjectMeta | None:
        """Copy the chunks an uploader staged on ``staged`` into object ``name``, the meta
        (digest included) computed here; None when nothing was staged. Raises
        ``PayloadTooLarge`` past ``max_bytes`` and ``IntegrityError`` for a broken staging,
        leaving no object behind."""
        if not await staged_count(self.js, staged):
            return None
        chunks = staged_chunks(self.js, staged)
        async with contextlib.aclosing(chunks):
            written = await put_object(self.js, self.nc, self.bucket, name, chunks,
                                       chunk_bytes=chunk_bytes, max_bytes=max_bytes)
        return ObjectMeta(name=name, nuid=written.nuid, size_bytes=written.size_bytes,
                          chunks=written.chunks, sha256=written.sha256)

    async def discard_staged(self, staged: str) -> None:
        """Drop an upload's staged chunks (copied, or abandoned); the stream's max_age would."""
        with swallowed(log, "purging staged chunks"):
            await self.js.purge_stream(Stream.STAGING, subject=staged)

    async def stored_chunks(self, nuid: str) -> int:
        """How many chunk messages the stream really holds for an object."""
        subject = chunk_subject(self.bucket, nuid)
        info = await self._call(self.js.stream_info(self.stream, subjects_filter=subject))
        return int((info.state.subjects or {}).get(subject, 0))

    async def head(self, nuid: str) -> bytes:
        """The first chunk's bytes (enough to sniff the format)."""
        try:
            msg = await self.js.get_msg(self.stream, seq=1, next=True,
                                        subject=chunk_subject(self.bucket, nuid))
        except NotFoundError:
            return b""
        except (NatsError, JsError) as e:
            raise _unavailable(e) from e
        return msg.data or b""

    async def delete(self, name: str, nuid: str | None = None) -> None:
        """Remove an object completely: meta first (it vanishes for readers at once), then its
        chunks. A crash in between leaves only chunks no meta points to: the sweep's job."""
        if nuid is None:
            meta = await self.meta(name)
            nuid = meta.nuid if meta else None
        await self._call(self.js.purge_stream(self.stream, subject=meta_subject(self.bucket, name)))
        if nuid and not await self._owned_elsewhere(nuid):
            await self.purge_chunks(nuid)

    async def _owned_elsewhere(self, nuid: str) -> bool:
        """Whether a live object's meta names these chunks. An uploader writes its own meta and
        could name another object's chunks: aborting or deleting its object must not purge
        the victim's (the sweep purges chunks once no meta owns them)."""
        return any(m.nuid == nuid for m in (await self.live_objects()).values())

    async def purge_chunks(self, nuid: str) -> None:
        await self._call(self.js.purge_stream(self.stream,
                                              subject=chunk_subject(self.bucket, nuid)))

    async def live_objects(self) -> dict[str, ObjectMeta]:
        """Every object with a live meta message, by name: one pass of an ordered consumer
        delivering the last message of each meta subject (not one request per object)."""
        prefix = f"$O.{self.bucket}.M."
        out: dict[str, ObjectMeta] = {}
        if not await self._subjects(prefix + ">"):
            return out  # an empty consumer would only time out
        sub = await self._call(self.js.subscribe(
            prefix + ">", ordered_consumer=True, stream=self.stream,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT))
        try:
            while True:
                msg = await sub.next_msg(timeout=LIST_TIMEOUT_S)
                meta = ObjectMeta.parse(msg.data or b"{}")
                if not meta.deleted:
                    out[_name_of(msg.subject, prefix) or meta.name] = meta
                if msg.metadata.num_pending == 0:
                    return out
        except TimeoutError as e:
            raise errors.ServiceUnavailable("object store listing timed out") from e
        finally:
            with swallowed(log, "unsubscribing the object listing", level=logging.DEBUG):
                await sub.unsubscribe()

    async def chunk_nuids(self) -> set[str]:
        prefix = f"$O.{self.bucket}.C."
        return {s[len(prefix):] for s in await self._subjects(prefix + ">")}

    async def last_chunk_age_s(self, nuid: str) -> float:
        msg = await self._call(self.js.get_last_msg(self.stream, chunk_subject(self.bucket, nuid)))
        if msg.time is None:
            return float("inf")
        return time.time() - msg.time.timestamp()

    async def stored_bytes(self) -> int:
        info = await self._call(self.js.stream_info(self.stream))
        return int(info.state.bytes)

    async def _subjects(self, pattern: str) -> list[str]:
        info = await self._call(self.js.stream_info(self.stream, subjects_filter=pattern))
        return list((info.state.subjects or {}).keys())

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (NatsError, JsError) as e:
            raise _unavailable(e) from e


def sniff(head: bytes, fmt: str) -> str:
    """Why these first bytes do not fit the declared format ("" when they do): a pickle
    declared as anything else must not slip past the ``allow_pickle`` policy."""
    if fmt in ("pickle", "joblib"):
        return ""
    if len(head) >= 2 and head[0] == 0x80 and head[1] in PICKLE_PROTOCOLS:
        return f"the artifact is a pickle but was declared as {fmt!r}"
    if fmt == "skops" and head and not head.startswith(ZIP_MAGIC):
        return "a skops artifact is a zip file; these bytes are not"
    return ""


def _name_of(subject: str, prefix: str) -> str:
    try:
        return base64.urlsafe_b64decode(subject[len(prefix):]).decode()
    except ValueError:
        return ""


def _unavailable(e: Exception) -> errors.ServiceUnavailable:
    return errors.ServiceUnavailable(f"object store unreachable: {e!r}")
