"""Snapshot files uploaded by a caller: staged, then checked and stored by this service.

The snapshot bucket is an object store, whose stream must allow rollup headers; only this
service publishes into it (``shared.clients.staging`` explains why). A caller (the gateway's
``PUT /v1/state/_snapshots/{name}``) stages the file's chunks on ``staging.<upload_id>`` and
asks ``state.snapshot.import``; the bytes are read back here, bounded by the declared size,
and stored only if they hash to the declared SHA-256. The staged chunks are purged either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from nats.js import JetStreamContext

from shared.clients.staging import staged_chunks
from shared.contracts.state import ImportSnapshot
from shared.errors import IntegrityError, InvalidRequest
from shared.logs import swallowed
from shared.subjects import Stream, staging_subject

log = logging.getLogger(__name__)


async def staged_file(js: JetStreamContext, req: ImportSnapshot) -> bytes:
    """The staged file's bytes, exactly ``req.size_bytes`` of them hashing to ``req.sha256``;
    raises ``InvalidRequest`` (nothing staged) or ``IntegrityError``."""
    subject = staging_subject(req.upload_id)
    try:
        data = await _read(js, subject, req.size_bytes)
    finally:
        with swallowed(log, "purging a staged snapshot"):
            await js.purge_stream(Stream.STAGING, subject=subject)
    if len(data) != req.size_bytes or hashlib.sha256(data).hexdigest() != req.sha256:
        raise IntegrityError("staged snapshot does not match the declared size and SHA-256",
                             details={"name": req.name, "size_bytes": len(data)})
    return data


async def _read(js: JetStreamContext, subject: str, limit: int) -> bytes:
    out = bytearray()
    found = False
    chunks = staged_chunks(js, subject)
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            found = True
            out += chunk
            if len(out) > limit:
                raise IntegrityError("staged snapshot is larger than declared",
                                     details={"size_bytes": limit})
    if not found and limit:
        raise InvalidRequest("nothing was staged for this snapshot upload",
                             details={"subject": subject})
    return bytes(out)
