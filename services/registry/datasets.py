"""Datasets: OHLCV files in the object store (bucket ``quantops_datasets``), catalogued by the
SHA-256 of their bytes, with their summary and validation report.

The flow mirrors model uploads: ``begin`` reserves an object name, the caller streams the bytes
into the object store, ``commit`` verifies the digest and then parses and validates the file in
a thread. Bytes already known (same SHA-256) are the same dataset: the new copy is deleted and
the name points to the existing file. A file with validation errors is stored and marked
``valid = false`` rather than refused: the report (with the offending rows) stays readable,
every training run checks it again and refuses, and nothing the caller uploaded is lost. Only
bytes that cannot be read as a table at all are refused.

Parsing and validation are the pure functions of ``quant`` (a library, like
``shared``), imported on first use so a registry that never sees a dataset never loads pandas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from services.registry import dataset_rows as rows
from services.registry.artifacts import ArtifactStore
from services.registry.catalog import Catalog
from services.registry.events import Publisher
from shared.clients.registry_objects import open_object
from shared.contracts import datasets as c
from shared.errors import Conflict, IntegrityError, InvalidRequest, NotFound, PayloadTooLarge
from shared.logs import swallowed
from shared.settings import QuantSettings
from shared.subjects import staging_subject

log = logging.getLogger(__name__)


def object_name(upload_id: str) -> str:
    return f"datasets/{upload_id}"


def ingest(data: bytes, fmt: str, *, max_abs_return: float, max_gap_factor: float,
           source: str = "") -> rows.Ingested:
    """Parse, summarise and validate a file (CPU-bound: run it in a thread)."""
    from quant.data import describe, read_ohlcv, sha256
    from quant.validation import validate_ohlcv

    try:
        frame = read_ohlcv(data, fmt)  # type: ignore[arg-type]  # checked by the contract
    except ValueError as e:
        raise InvalidRequest(f"not a readable OHLCV {fmt} file: {e}",
                             details={"format": fmt}) from e
    summary = describe(frame)
    report = validate_ohlcv(frame, max_abs_return=max_abs_return, max_gap_factor=max_gap_factor)
    if not len(frame):
        report = msgspec.structs.replace(report, errors=[
            *report.errors, c.Issue(check="empty", message="the file has no rows")])
    return rows.Ingested(sha256=sha256(data), format=fmt, size_bytes=len(data), rows=len(frame),
                         symbols=summary.symbols, start=_epoch(summary.start),
                         end=_epoch(summary.end), frequency=summary.frequency, report=report,
                         source=source)


def _epoch(iso: str | None) -> float | None:
    if iso is None:
        return None
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def demo_bytes() -> bytes:
    """The bundled real prices (AAPL, GOOG, IBM, MSFT daily, split-adjusted) as canonical CSV:
    the same bytes, and so the same digest, on every machine with the same library versions."""
    from quant.data import frame_to_bytes, load_demo_prices

    return frame_to_bytes(load_demo_prices(["AAPL", "GOOG", "IBM", "MSFT"]), "csv")


class Datasets:
    """The dataset operations behind ``registry.datasets.*``.

    Args:
        catalog: the registry's catalog (migration 0002 holds the tables).
        store: the ``quantops_datasets`` bucket.
        publisher: the registry's outbox publisher (``events.dataset.named``).
        settings: limits and validation thresholds.
        chunk_bytes, upload_ttl_s: as for model uploads.
    """

    def __init__(self, catalog: Catalog, store: ArtifactStore, publisher: Publisher,
                 settings: QuantSettings, *, chunk_bytes: int, upload_ttl_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog, self.store, self.publisher = catalog, store, publisher
        self.settings = settings
        self.chunk_bytes, self.upload_ttl_s = chunk_bytes, upload_ttl_s
        self.clock = clock
        self._seeding = asyncio.Lock()

    # --- upload ---------------------------------------------------------------------------

    async def begin(self, req: c.BeginDatasetUpload, principal: str) -> c.DatasetTicket:
        limit = self.settings.max_dataset_bytes
        if req.size_bytes is not None and req.size_bytes > limit:
            raise PayloadTooLarge(f"dataset of {req.size_bytes} bytes exceeds the limit of "
                                  f"{limit} bytes", details={"max_bytes": limit})
        upload_id, now = uuid.uuid4().hex, self.clock()
        expires = now + self.upload_ttl_s
        async with self.catalog.write() as conn:
            await rows.create_upload(conn, upload_id=upload_id, req=req,
                                     object_name=object_name(upload_id), principal=principal,
                                     now=now, expires_at=expires)
        return c.DatasetTicket(upload_id=upload_id, bucket=self.store.bucket,
                               object_name=object_name(upload_id), chunk_bytes=self.chunk_bytes,
                               max_bytes=limit, expires_at=datetime.fromtimestamp(expires, UTC),
                               name=req.name, staging_subject=staging_subject(upload_id))

    async def commit(self, req: c.CommitDatasetUpload, principal: str) -> c.DatasetInfo:
        row = await rows.upload(self.catalog.reader, req.upload_id)
        if row is None:
            raise NotFound(f"no dataset upload {req.upload_id}",
                           details={"upload_id": req.upload_id})
        if row["state"] != "pending":
            raise Conflict(f"dataset upload {req.upload_id} is {row['state']}",
                           details={"upload_id": req.upload_id, "state": row["state"]})
        try:
            data = await self._verified_bytes(row["object_name"], req)
            found = await asyncio.to_thread(
                ingest, data, row["format"], max_abs_return=self.settings.max_abs_return,
                max_gap_factor=self.settings.max_gap_factor, source=row["source"])
        except BaseException:
            await self.abort(req.upload_id)
            raise
        info = await self._catalogue(found, name=row["name"], object_name=row["object_name"],
                                     principal=principal, upload_id=req.upload_id)
        await self.store.discard_staged(staging_subject(req.upload_id))
        return info

    async def _verified_bytes(self, name: str, req: c.CommitDatasetUpload) -> bytes:
        meta = await self.store.meta(name) or await self.store.assemble(
            staging_subject(req.upload_id), name, chunk_bytes=self.chunk_bytes,
            max_bytes=self.settings.max_dataset_bytes)
        if meta is None:
            raise IntegrityError("no bytes were stored for this upload", details={"object": name})
        if meta.sha256 != req.sha256 or meta.size_bytes != req.size_bytes:
            raise IntegrityError("stored bytes differ from the digest or size sent at commit",
                                 details={"expected_sha256": req.sha256,
                                          "stored_sha256": meta.sha256})
        if meta.size_bytes > self.settings.max_dataset_bytes:
            raise PayloadTooLarge(f"dataset exceeds the limit of "
                                  f"{self.settings.max_dataset_bytes} bytes")
        chunks = await open_object(self.store.js, self.store.bucket, name, sha256=req.sha256,
                                   size_bytes=req.size_bytes)
        async with contextlib.aclosing(chunks):
            return b"".join([chunk async for chunk in chunks])

    async def _catalogue(self, found: rows.Ingested, *, name: str, object_name: str,
                         principal: str, upload_id: str = "") -> c.DatasetInfo:
        """Insert the file (unless its bytes are known) and point the name at it, in one
        transaction; a duplicate's fresh object is deleted after the commit."""
        now = self.clock()
        async with self.catalog.write() as conn:
            existing = await rows.by_sha256(conn, found.sha256)
            known = existing is not None
            if existing is None:
                await rows.insert_file(conn, found, object_name=object_name,
                                       principal=principal, now=now)
            if upload_id and not await rows.finish_upload(conn, upload_id, "committed"):
                raise Conflict(f"dataset upload {upload_id} is no longer pending")
            await rows.point_name(conn, name, found.sha256, principal=principal, now=now)
        if existing is not None and existing["object_name"] != object_name:
            with swallowed(log, "deleting the replaced dataset object"):
                await self.store.delete(object_name)
        await self.publisher.flush()
        row = await rows.by_name(self.catalog.reader, name)
        assert row is not None
        log.info("dataset catalogued", extra={"dataset": name, "sha256": found.sha256,
                                              "new_file": not known, "valid": found.report.ok})
        return rows.info(row, self.store.bucket, created=not known)

    async def abort(self, upload_id: str) -> None:
        async with self.catalog.write() as conn:
            row = await rows.upload(conn, upload_id)
            if row is None:
                raise NotFound(f"no dataset upload {upload_id}", details={"upload_id": upload_id})
            aborted = await rows.finish_upload(conn, upload_id, "aborted")
        if aborted:
            with swallowed(log, "deleting the aborted dataset object"):
                await self.store.delete(row["object_name"])
            await self.store.discard_staged(staging_subject(upload_id))

    # --- reads ----------------------------------------------------------------------------

    async def get(self, ref: str) -> c.DatasetInfo:
        name, digest = c.parse_ref(ref)
        conn = self.catalog.reader
        row = await (rows.by_sha256(conn, digest) if digest else rows.by_name(conn, name))
        if row is None:
            raise NotFound(f"no dataset {ref!r}", details={"ref": ref})
        return rows.info(row, self.store.bucket)

    async def list(self, req: c.ListDatasets) -> c.DatasetPage:
        found = await rows.page(self.catalog.reader, req)
        more = len(found) > req.limit
        found = found[:req.limit]
        return c.DatasetPage(items=[rows.summary(r) for r in found],
                             next_cursor=found[-1]["name"] if more and found else "")

    # --- the demo -------------------------------------------------------------------------

    async def seed_demo(self, req: c.SeedDemo, principal: str) -> c.DatasetInfo:
        """Store and catalogue the bundled real prices under ``req.name``; a second call (or a
        concurrent one) finds the same bytes and only points the name."""
        async with self._seeding:
            data = await asyncio.to_thread(demo_bytes)
            source = "bokeh-sampledata stocks.csv.gz (Quandl WIKI, public domain)"
            found = await asyncio.to_thread(
                ingest, data, "csv", max_abs_return=self.settings.max_abs_return,
                max_gap_factor=self.settings.max_gap_factor, source=source)
            existing = await rows.by_sha256(self.catalog.reader, found.sha256)
            name = object_name(uuid.uuid4().hex)
            if existing is None:
                await self.store.put(name, data, chunk_bytes=self.chunk_bytes,
                                     max_bytes=max(len(data), 1))
            return await self._catalogue(found, name=req.name, principal=principal,
                                         object_name=existing["object_name"] if existing
                                         else name)

    async def seed_if_missing(self) -> None:
        """At start-up: the demo dataset, unless its name already exists."""
        if await rows.by_name(self.catalog.reader, c.DEMO_DATASET) is not None:
            return
        info = await self.seed_demo(c.SeedDemo(), "registry")
        log.info("demo dataset registered", extra={"dataset": info.name, "sha256": info.sha256,
                                                   "rows": info.rows})

    # --- consistency ----------------------------------------------------------------------

    async def sweep(self, *, startup: bool) -> int:
        """Abort stale uploads and delete objects no file or pending upload names; returns how
        many objects were deleted. At start-up every pending upload is stale."""
        async with self._seeding:  # a demo object is written before its row exists
            return await self._sweep(startup=startup)

    async def _sweep(self, *, startup: bool) -> int:
        now = self.clock()
        async with self.catalog.write() as conn:
            await rows.abort_pending(conn, expired_before=None if startup else now)
            keep = await rows.kept_objects(conn)
        live = await self.store.live_objects()
        deleted = 0
        for name, meta in live.items():
            if name not in keep:
                await self.store.delete(name, meta.nuid)
                deleted += 1
        owned = {m.nuid for n, m in live.items() if n in keep}
        for nuid in await self.store.chunk_nuids() - owned:
            if startup or await self.store.last_chunk_age_s(nuid) > self.upload_ttl_s:
                await self.store.purge_chunks(nuid)
        if deleted:
            log.warning("dataset objects without a catalogue entry deleted",
                        extra={"deleted_objects": deleted})
        return deleted
