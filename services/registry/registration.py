"""Registering a version: begin (validate, reserve an object name), the caller uploads, commit
(verify the object, then one SQLite transaction makes the version exist).

Atomicity: the version row, its metrics and tags, the upload's state change, the audit entry
and the event are one transaction, committed only after the object is verified complete. Before
that commit the object is invisible (no row names it); a crash leaves an object without a row,
which the start-up sweep deletes. See docs/registry.md, "Atomicity".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import aiosqlite

from services.registry import journal, names, store, uploads
from services.registry.artifacts import ArtifactStore, object_name, sniff
from services.registry.catalog import Catalog
from services.registry.events import Publisher
from services.registry.names import Selector
from services.registry.uploads import UploadState
from shared.clients.registry_objects import ObjectMeta
from shared.contracts.registry import (
    CODE_EXECUTING_FORMATS,
    INLINE_MAX_BYTES,
    ArtifactFormat,
    BeginUpload,
    CommitUpload,
    RegisterVersion,
    UploadTicket,
    VersionInfo,
)
from shared.errors import Conflict, IntegrityError, InvalidRequest, NotFound, PayloadTooLarge
from shared.logs import swallowed
from shared.settings import RegistrySettings
from shared.subjects import ModelEvent, staging_subject

log = logging.getLogger(__name__)


class Registrar:
    """Begin, commit and abort uploads; inline registration of small artifacts.

    Args:
        catalog, artifacts, publisher: the service's catalog, object store and outbox.
        settings: limits (size, chunk, TTL), the pickle policy and the test pause.
        clock: wall-clock seconds (tests move it).
    """

    def __init__(self, catalog: Catalog, artifacts: ArtifactStore, publisher: Publisher,
                 settings: RegistrySettings, clock: Callable[[], float] = time.time) -> None:
        self.catalog, self.artifacts, self.publisher = catalog, artifacts, publisher
        self.settings = settings
        self.clock = clock

    async def begin(self, req: BeginUpload, principal: str) -> UploadTicket:
        name = names.model_name(req.model)
        names.spec(req.spec)
        key = names.idempotency_key(req.idempotency_key)
        self._check_format(req.spec.format)
        if req.size_bytes is not None:
            self._check_size(req.size_bytes)
        if key:
            existing = await store.by_idempotency_key(self.catalog.reader, name, key)
            if existing is not None:
                info = await store.info(self.catalog.reader, existing, self.artifacts.bucket)
                return UploadTicket(model=name, existing=info)
        upload_id = uuid.uuid4().hex
        now = self.clock()
        expires = now + self.settings.upload_ttl_s
        async with self.catalog.write() as conn:
            await uploads.create(conn, upload_id=upload_id, object_name=object_name(upload_id),
                                 request=req, principal=principal, now=now, expires_at=expires)
        return self._ticket(upload_id, name, expires)

    async def ticket(self, upload_id: str) -> UploadTicket:
        row = await self._pending(names.upload_id(upload_id))
        return self._ticket(row["id"], row["model"], row["expires_at"])

    def _ticket(self, upload_id: str, model: str, expires_at: float) -> UploadTicket:
        return UploadTicket(upload_id=upload_id, bucket=self.artifacts.bucket,
                            object_name=object_name(upload_id),
                            chunk_bytes=self.settings.chunk_bytes,
                            staging_subject=staging_subject(upload_id),
                            max_bytes=self.settings.max_artifact_bytes,
                            expires_at=datetime.fromtimestamp(expires_at, UTC), model=model)

    async def commit(self, req: CommitUpload, principal: str) -> VersionInfo:
        upload_id = names.upload_id(req.upload_id)
        sha256 = names.sha256(req.sha256)
        done = await store.by_upload(self.catalog.reader, upload_id)
        if done is not None:  # a retried commit: same answer
            return await store.info(self.catalog.reader, done, self.artifacts.bucket)
        row = await self._pending(upload_id)
        meta = await self._verify(row, sha256, req.size_bytes)
        if self.settings.test_pause_before_commit_s:
            log.warning("test hook: pausing between upload and commit",
                        extra={"upload_id": upload_id})
            await asyncio.sleep(self.settings.test_pause_before_commit_s)
        info, superseded = await self._commit(row, meta, principal)
        await self.artifacts.discard_staged(staging_subject(upload_id))
        if superseded:  # the idempotency key won by another upload: ours is surplus
            await self.artifacts.delete(row["object_name"])
        await self.publisher.flush()
        return info

    async def register_inline(self, req: RegisterVersion, principal: str) -> VersionInfo:
        size = len(req.artifact)
        if size > INLINE_MAX_BYTES:
            raise PayloadTooLarge(
                f"inline artifacts are limited to {INLINE_MAX_BYTES} bytes; upload bigger ones "
                "through the object store (registry.uploads.begin)",
                details={"max_bytes": INLINE_MAX_BYTES, "size_bytes": size})
        ticket = await self.begin(BeginUpload(model=req.model, spec=req.spec, size_bytes=size,
                                              idempotency_key=req.idempotency_key), principal)
        if ticket.existing is not None:
            return ticket.existing
        try:
            written = await self.artifacts.put(ticket.object_name, req.artifact,
                                               chunk_bytes=ticket.chunk_bytes,
                                               max_bytes=ticket.max_bytes)
        except Exception:  # free the upload now rather than at its expiry
            with swallowed(log, "aborting the upload"):
                await self.abort(ticket.upload_id)
            raise
        return await self.commit(CommitUpload(upload_id=ticket.upload_id,
                                              sha256=written.sha256, size_bytes=size), principal)

    async def abort(self, upload_id: str) -> None:
        row = await self._pending(names.upload_id(upload_id))
        await self._abort(row)

    async def _pending(self, upload_id: str) -> aiosqlite.Row:
        row = await uploads.get(self.catalog.reader, upload_id)
        if row is None:
            raise NotFound(f"no upload {upload_id}", details={"upload_id": upload_id})
        if row["state"] != UploadState.PENDING:
            raise Conflict(f"upload {upload_id} is {row['state']}: begin a new one",
                           details={"upload_id": upload_id, "reason": f"upload_{row['state']}"})
        return row

    async def _abort(self, row: aiosqlite.Row) -> None:
        async with self.catalog.write() as conn:
            aborted = await uploads.finish(conn, row["id"], UploadState.ABORTED)
        if aborted:
            await self.artifacts.delete(row["object_name"])
            await self.artifacts.discard_staged(staging_subject(row["id"]))

    async def _stored(self, row: aiosqlite.Row, size: int) -> ObjectMeta | None:
        """The upload's object, copied from its staging subject by the first commit (a retried
        commit finds it in place; so does an inline registration, which writes it directly)."""
        name = row["object_name"]
        meta = await self.artifacts.meta(name)
        if meta is not None:
            return meta
        try:
            meta = await self.artifacts.assemble(
                staging_subject(row["id"]), name, chunk_bytes=self.settings.chunk_bytes,
                max_bytes=self.settings.max_artifact_bytes)
            if meta is None and size == 0:  # an empty artifact stages no chunk
                meta = await self.artifacts.put(name, b"", chunk_bytes=self.settings.chunk_bytes,
                                                max_bytes=1)
        except (PayloadTooLarge, IntegrityError):
            await self._abort(row)
            raise
        return meta

    async def _verify(self, row: aiosqlite.Row, sha256: str, size: int) -> ObjectMeta:
        """The object must be complete and be what the caller says, or the upload is void."""
        meta = await self._stored(row, size)
        if meta is None:
            raise InvalidRequest("nothing was uploaded for this upload yet",
                                 details={"object_name": row["object_name"]})
        declared = uploads.request_of(row)
        problem: Exception | None = None
        if meta.size_bytes > self.settings.max_artifact_bytes:
            problem = self._too_large(meta.size_bytes)
        elif meta.size_bytes != size or declared.size_bytes not in (None, size):
            problem = InvalidRequest("uploaded size differs from the declared size",
                                     details={"stored": meta.size_bytes, "declared": size})
        elif meta.sha256 != sha256:
            problem = IntegrityError("uploaded bytes do not hash to the declared sha256",
                                     details={"stored": meta.sha256, "declared": sha256})
        elif await self.artifacts.stored_chunks(meta.nuid) != meta.chunks:
            problem = IntegrityError("uploaded object is incomplete (chunks missing)")
        elif reason := sniff(await self.artifacts.head(meta.nuid), declared.spec.format):
            problem = InvalidRequest(reason, details={"format": declared.spec.format.value})
        if problem is not None:
            await self._abort(row)
            raise problem
        return meta

    async def _commit(self, row: aiosqlite.Row, meta: ObjectMeta, principal: str
                      ) -> tuple[VersionInfo, bool]:
        req = uploads.request_of(row)
        key = names.idempotency_key(req.idempotency_key)
        async with self.catalog.write() as conn:
            existing = await store.by_idempotency_key(conn, req.model, key) if key else None
            state = UploadState.ABORTED if existing else UploadState.COMMITTED
            if not await uploads.finish(conn, row["id"], state):
                existing = await store.by_upload(conn, row["id"])
                if existing is None:
                    raise Conflict("upload was aborted while committing: begin a new one",
                                   details={"reason": "upload_aborted"})
                return await store.info(conn, existing, self.artifacts.bucket), False
            if existing is not None:
                return await store.info(conn, existing, self.artifacts.bucket), True
            now = self.clock()
            model = await store.ensure_model(conn, req.model, now)
            number = await store.insert_version(conn, model, store.NewVersion(
                spec=req.spec, sha256=meta.sha256, size_bytes=meta.size_bytes,
                object_name=row["object_name"], upload_id=row["id"], idempotency_key=key,
                created_by=principal, created_at=now))
            await journal.record(conn, journal.Fact(
                action="register", model=req.model, principal=principal, at=now,
                event=ModelEvent.REGISTERED, to_version=number, sha256=meta.sha256))
            version = await store.resolve(conn, req.model, Selector(version=number))
            return await store.info(conn, version, self.artifacts.bucket), False

    def _check_format(self, fmt: ArtifactFormat) -> None:
        if fmt in CODE_EXECUTING_FORMATS and not self.settings.allow_pickle:
            raise InvalidRequest(
                f"format {fmt.value!r} runs code when loaded and is refused here; use skops for "
                "scikit-learn models (or set QUANTOPS_REGISTRY_ALLOW_PICKLE=true)",
                details={"field": "spec.format", "format": fmt.value})

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise InvalidRequest("size_bytes must not be negative",
                                 details={"field": "size_bytes"})
        if size > self.settings.max_artifact_bytes:
            raise self._too_large(size)

    def _too_large(self, size: int) -> PayloadTooLarge:
        limit = self.settings.max_artifact_bytes
        return PayloadTooLarge(f"artifact of {size} bytes exceeds the limit of {limit} bytes",
                               details={"max_bytes": limit, "size_bytes": size})
