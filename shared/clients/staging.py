"""Uploads staged for the registry: the uploader's bytes never enter an object store directly.

An object store's stream must allow rollup headers (each meta message rolls up its subject),
and NATS permissions cannot look at headers: whoever may publish into ``$O.<bucket>.>`` can
send ``Nats-Rollup: all`` and erase the whole bucket. So only the registry publishes there.
An uploader (the gateway for an HTTP upload, the executor after training) publishes the chunks
of its upload on ``staging.<upload_id>`` in the ``QUANTOPS_STAGING`` stream, which refuses
rollups and message deletes and keeps nothing longer than an upload may live
(``shared.streams.staging_config``); at commit the registry copies the chunks into the object
store itself, writing its own meta, and the digest it computes is the one checked against the
commit's. Then it purges the staged subject (the stream's ``max_age`` is the backstop).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError

from shared import errors, telemetry
from shared.clients.registry_objects import ChunkWriter, Source, WrittenObject, pieces
from shared.subjects import Stream


async def stage_object(js: JetStreamContext, nc: NATS, subject: str, source: Source, *,
                       chunk_bytes: int, max_bytes: int) -> WrittenObject:
    """Publish ``source`` as chunks on the upload's staging ``subject``; every chunk is
    acknowledged when this returns. What a failed upload staged is the registry's to drop (the
    uploader cannot purge): abort the upload."""
    if not subject:
        raise errors.InvalidRequest("the upload ticket names no staging subject (an older "
                                    "registry?): begin the upload again")
    writer = ChunkWriter(js, nc, subject, chunk_bytes=chunk_bytes, max_bytes=max_bytes)
    with telemetry.span("artifact upload", {"quantops.staging": subject}) as span:
        try:
            async for piece in pieces(source, writer.chunk_bytes):
                await writer.write(piece)
            await writer.flush()
        except BaseException:
            await writer.settle()
            raise
        span.set_attribute("quantops.size_bytes", writer.size_bytes)
        return WrittenObject(name="", nuid="", sha256=writer.sha256(),
                             size_bytes=writer.size_bytes, chunks=writer.chunks)


async def staged_count(js: JetStreamContext, subject: str) -> int:
    """How many chunks are staged on ``subject``."""
    try:
        info = await js.stream_info(Stream.STAGING, subjects_filter=subject)
    except (NatsError, JsError) as e:
        raise errors.ServiceUnavailable(f"staging stream unreachable: {e!r}") from e
    return int((info.state.subjects or {}).get(subject, 0))


async def staged_chunks(js: JetStreamContext, subject: str, *, idle_timeout_s: float = 10.0
                        ) -> AsyncGenerator[bytes, None]:
    """The chunks staged on ``subject``, in order; none if nothing was staged. Raises
    ``IntegrityError`` when chunks stop arriving before the last one."""
    if not await staged_count(js, subject):
        return
    sub = await js.subscribe(subject, ordered_consumer=True, stream=Stream.STAGING)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_timeout_s)
            except TimeoutError as e:
                raise errors.IntegrityError("staged upload is incomplete: chunks missing",
                                            details={"subject": subject}) from e
            yield msg.data
            if msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
