"""Typed async client of the model registry, over a ``shared.bus.Bus``.

Registering: bytes up to ``INLINE_MAX_BYTES`` go inline in one request; anything bigger (or a
file, or an async stream) is written straight into the JetStream object store under the name
the registry hands out, then committed: the registry never holds the bytes in memory and
nothing depends on the server's max_payload. Downloads read the object store directly and
check the SHA-256 recorded at registration (``IntegrityError`` on mismatch).

    client = RegistryClient(bus, principal="trainer")
    v = await client.register_model("eurusd-dir", estimator, VersionSpec(metrics={"rmse": .01}))
    await client.promote("eurusd-dir", v.version, reason="beats production on rmse")
    model = await client.load("eurusd-dir@production")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from shared.clients.base import ServiceClient
from shared.clients.registry_formats import dump_skops, load_artifact
from shared.clients.registry_objects import Source, open_object
from shared.clients.staging import stage_object
from shared.contracts import registry as c
from shared.contracts.base import Empty
from shared.logs import swallowed
from shared.subjects import RegistrySubject as S

log = logging.getLogger(__name__)

#: Commit verifies the object in the store; give it more than a plain request.
COMMIT_TIMEOUT_S = 60.0


class RegistryClient(ServiceClient):
    """The registry, as methods.

    Args:
        bus: the caller's NATS connection.
        principal: who the registry records in its audit log (``Quantops-Principal``).
        headers: extra NATS headers for every request (the gateway passes its own).
        timeout_s: per request; defaults to the bus's.
    """

    # --- registration ---------------------------------------------------------------------

    async def register(self, model: str, artifact: Source, spec: c.VersionSpec | None = None,
                       *, idempotency_key: str = "", size_bytes: int | None = None
                       ) -> c.VersionInfo:
        """Register a version; with ``idempotency_key`` a retry returns the same version."""
        spec = spec or c.VersionSpec()
        if isinstance(artifact, bytes | bytearray | memoryview) and \
                len(artifact) <= c.INLINE_MAX_BYTES:
            return await self._call(S.REGISTER, c.RegisterVersion(
                model=model, artifact=bytes(artifact), spec=spec,
                idempotency_key=idempotency_key), c.VersionInfo, timeout_s=COMMIT_TIMEOUT_S)
        ticket = await self.begin_upload(model, spec, size_bytes=_size_of(artifact, size_bytes),
                                         idempotency_key=idempotency_key)
        if ticket.existing is not None:
            return ticket.existing
        return await self.upload(ticket, artifact)

    async def register_model(self, model: str, estimator: Any,
                             spec: c.VersionSpec | None = None, *, idempotency_key: str = ""
                             ) -> c.VersionInfo:
        """Register a scikit-learn estimator, serialized with skops."""
        data = await asyncio.to_thread(dump_skops, estimator)
        spec = msgspec.structs.replace(spec or c.VersionSpec(), format=c.ArtifactFormat.SKOPS)
        return await self.register(model, data, spec, idempotency_key=idempotency_key)

    async def begin_upload(self, model: str, spec: c.VersionSpec, *,
                           size_bytes: int | None = None, idempotency_key: str = ""
                           ) -> c.UploadTicket:
        return await self._call(S.UPLOAD_BEGIN, c.BeginUpload(
            model=model, spec=spec, size_bytes=size_bytes, idempotency_key=idempotency_key),
            c.UploadTicket)

    async def upload(self, ticket: c.UploadTicket, source: Source) -> c.VersionInfo:
        """Stage the bytes for the registry and commit (it copies them into the object store);
        a failed write aborts the upload."""
        try:
            written = await stage_object(self.bus.js, self.bus.nc, ticket.staging_subject,
                                         source, chunk_bytes=ticket.chunk_bytes,
                                         max_bytes=ticket.max_bytes)
        except BaseException:
            with swallowed(log, "aborting the upload"):
                await self.abort_upload(ticket.upload_id)
            raise
        return await self.commit_upload(ticket.upload_id, written.sha256, written.size_bytes)

    async def upload_ticket(self, upload_id: str) -> c.UploadTicket:
        return await self._call(S.UPLOAD_GET, c.UploadRequest(upload_id=upload_id),
                                c.UploadTicket)

    async def commit_upload(self, upload_id: str, sha256: str, size_bytes: int
                            ) -> c.VersionInfo:
        return await self._call(S.UPLOAD_COMMIT, c.CommitUpload(
            upload_id=upload_id, sha256=sha256, size_bytes=size_bytes), c.VersionInfo,
            timeout_s=COMMIT_TIMEOUT_S)

    async def abort_upload(self, upload_id: str) -> None:
        await self._call(S.UPLOAD_ABORT, c.UploadRequest(upload_id=upload_id), Empty)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, ref: str) -> c.VersionInfo:
        """Full metadata of ``name@7``, ``name@production``, ``name@latest`` or ``name``."""
        return await self._call(S.GET, c.VersionRequest(ref=ref), c.VersionInfo)

    resolve = get

    async def list_models(self, *, prefix: str = "", limit: int = 100, cursor: str = ""
                          ) -> c.ModelPage:
        return await self._call(S.MODELS_LIST, c.ListModels(prefix=prefix, limit=limit,
                                                            cursor=cursor), c.ModelPage)

    async def list_versions(
        self, model: str, *, metrics: Iterable[str | c.MetricFilter] = (),
        tags: Mapping[str, str] | None = None, trained_from: datetime | None = None,
        trained_to: datetime | None = None, data_from: datetime | None = None,
        data_to: datetime | None = None, sort: str = "-version", limit: int = 50,
        cursor: str = "",
    ) -> c.VersionPage:
        """One page; ``metrics`` takes ``"rmse<0.01"`` strings or ``MetricFilter``s."""
        filters = [m if isinstance(m, c.MetricFilter) else c.MetricFilter.parse(m)
                   for m in metrics]
        return await self._call(S.LIST, c.ListVersions(
            model=model, metrics=filters, tags=dict(tags or {}), trained_from=trained_from,
            trained_to=trained_to, data_from=data_from, data_to=data_to, sort=sort,
            limit=limit, cursor=cursor), c.VersionPage)

    async def iter_versions(self, model: str, **filters: Any) -> AsyncIterator[c.VersionSummary]:
        """Every matching version, following cursors page by page."""
        cursor = ""
        while True:
            page = await self.list_versions(model, cursor=cursor, **filters)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def compare(self, *refs: str) -> c.Comparison:
        return await self._call(S.COMPARE, c.CompareVersions(refs=list(refs)), c.Comparison)

    async def audit(self, model: str = "", *, limit: int = 100, cursor: str = ""
                    ) -> c.AuditPage:
        return await self._call(S.AUDIT, c.ListAudit(model=model, limit=limit, cursor=cursor),
                                c.AuditPage)

    # --- artifacts ------------------------------------------------------------------------

    async def open_artifact(self, ref: str
                            ) -> tuple[c.VersionInfo, AsyncGenerator[bytes, None]]:
        """The version and its bytes as verified chunks (last one only once the digest holds)."""
        info = await self.get(ref)
        a = info.artifact
        return info, await open_object(self.bus.js, a.bucket, a.object_name, sha256=a.sha256,
                                       size_bytes=a.size_bytes)

    async def download(self, ref: str) -> tuple[c.VersionInfo, bytes]:
        info, chunks = await self.open_artifact(ref)
        async with contextlib.aclosing(chunks):
            return info, b"".join([chunk async for chunk in chunks])

    async def download_to(self, ref: str, path: Path) -> c.VersionInfo:
        """Write the artifact to ``path`` atomically: a temp file renamed once verified."""
        info, chunks = await self.open_artifact(ref)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        await asyncio.to_thread(out.write, chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return info

    async def load(self, ref: str, *, allow_pickle: bool = False, trusted: Iterable[str] = ()
                   ) -> Any:
        """Download, verify and deserialize (skops with its allow-list; no pickle by default)."""
        info, data = await self.download(ref)
        return await asyncio.to_thread(load_artifact, data, info.artifact.format,
                                       allow_pickle=allow_pickle, trusted=tuple(trusted))

    # --- lifecycle ------------------------------------------------------------------------

    async def set_alias(self, model: str, alias: str, version: int | str, *, reason: str = ""
                        ) -> c.AliasChange:
        return await self._call(S.ALIAS_SET, c.SetAlias(model=model, alias=alias,
                                                        version=version, reason=reason),
                                c.AliasChange)

    async def delete_alias(self, model: str, alias: str, *, reason: str = "") -> c.AliasChange:
        return await self._call(S.ALIAS_DELETE, c.DeleteAlias(model=model, alias=alias,
                                                              reason=reason), c.AliasChange)

    async def aliases(self, model: str) -> dict[str, int]:
        return (await self._call(S.ALIAS_LIST, c.ModelRequest(model=model),
                                 c.AliasList)).aliases

    async def promote(self, model: str, version: int | str, *, reason: str = ""
                      ) -> c.AliasChange:
        return await self._call(S.PROMOTE, c.Promote(model=model, version=version,
                                                     reason=reason), c.AliasChange)

    async def rollback(self, model: str, *, alias: str = c.PRODUCTION, reason: str = ""
                       ) -> c.AliasChange:
        return await self._call(S.ROLLBACK, c.Rollback(model=model, alias=alias,
                                                       reason=reason), c.AliasChange)

    async def delete(self, ref: str, *, reason: str = "") -> c.DeleteReply:
        return await self._call(S.DELETE, c.DeleteVersion(ref=ref, reason=reason),
                                c.DeleteReply)

    async def cleanup(self, model: str = "", *, keep: int | None = None, dry_run: bool = False,
                      reason: str = "") -> c.CleanupReply:
        return await self._call(S.CLEANUP, c.Cleanup(model=model, keep=keep, dry_run=dry_run,
                                                     reason=reason), c.CleanupReply,
                                timeout_s=COMMIT_TIMEOUT_S)


def _size_of(source: Source, declared: int | None) -> int | None:
    """The size, when it is known before reading: lets the registry refuse early."""
    if declared is not None:
        return declared
    if isinstance(source, bytes | bytearray | memoryview):
        return len(source)
    if isinstance(source, Path):
        return source.stat().st_size
    return None
