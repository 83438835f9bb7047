"""The orphan check: make the object store and the catalog agree.

At start-up (before any subject is served, so nothing races it):
- every pending upload is aborted: no commit begun before the restart can still happen;
- every object no version row names is deleted (an upload that never committed, a crash
  between commit and object deletion), and every chunk subject no live object owns is purged
  (an upload cut off before its meta message);
- every version row whose object is missing is removed, with its aliases, and audited. If that
  would remove most of a large catalog, it is refused and reported instead: that smells of a
  wrong NATS server, not of orphans.

Periodically the same runs with care for uploads in flight: only expired uploads are aborted,
pending uploads' objects are kept, and chunks are purged only once older than the upload TTL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.registry import journal, uploads
from services.registry.artifacts import ArtifactStore
from services.registry.catalog import Catalog, fetchall, placeholders
from services.registry.events import Publisher
from shared.subjects import ModelEvent

log = logging.getLogger(__name__)

FINISHED_UPLOADS_KEPT_S = 7 * 24 * 3600.0
MASS_REMOVAL_FLOOR = 10


@dataclass
class SweepReport:
    aborted_uploads: int = 0
    deleted_objects: list[str] = field(default_factory=list)
    purged_chunk_subjects: int = 0
    removed_versions: list[str] = field(default_factory=list)
    refused: str = ""


class OrphanRemover:
    def __init__(self, catalog: Catalog, artifacts: ArtifactStore, publisher: Publisher, *,
                 upload_ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.catalog, self.artifacts, self.publisher = catalog, artifacts, publisher
        self.upload_ttl_s = upload_ttl_s
        self.clock = clock
        self.last: SweepReport | None = None

    async def run(self, *, startup: bool) -> SweepReport:
        report = SweepReport()
        now = self.clock()
        async with self.catalog.write() as conn:
            aborted = await uploads.abort_pending(conn, expired_before=None if startup else now)
            report.aborted_uploads = len(aborted)
            await uploads.prune(conn, finished_before=now - FINISHED_UPLOADS_KEPT_S)
        live = await self.artifacts.live_objects()
        # One statement, one snapshot: an upload cannot slip from 'pending' to committed
        # between the two halves of this set.
        keep = {r[0] for r in await self.catalog.fetchall(
            "SELECT object_name FROM versions UNION "
            "SELECT object_name FROM uploads WHERE state = 'pending'")}
        for name, meta in list(live.items()):
            if name not in keep:
                await self.artifacts.delete(name, meta.nuid)
                report.deleted_objects.append(name)
                del live[name]
        owned = {m.nuid for m in live.values()}
        for nuid in await self.artifacts.chunk_nuids() - owned:
            if startup or await self.artifacts.last_chunk_age_s(nuid) > self.upload_ttl_s:
                await self.artifacts.purge_chunks(nuid)
                report.purged_chunk_subjects += 1
        if startup:
            await self._remove_missing(set(live), report)
            await self.publisher.flush()
        self.last = report
        if report.deleted_objects or report.removed_versions or report.purged_chunk_subjects:
            log.warning("orphans removed", extra={
                "deleted_objects": len(report.deleted_objects),
                "purged_chunk_subjects": report.purged_chunk_subjects,
                "removed_versions": report.removed_versions})
        return report

    async def _remove_missing(self, live: set[str], report: SweepReport) -> None:
        """Remove version rows whose object is gone (with a guard against mass removal)."""
        names = [r[0] for r in await self.catalog.fetchall(
            "SELECT DISTINCT object_name FROM versions")]
        missing = [n for n in names if n not in live]
        if not missing:
            return
        if len(missing) > MASS_REMOVAL_FLOOR and len(missing) * 2 > len(names):
            report.refused = (f"{len(missing)} of {len(names)} artifacts are missing from the "
                              "object store: not removing them (wrong NATS server?)")
            log.error("orphan check refused", extra={"reason": report.refused})
            return
        now = self.clock()
        async with self.catalog.write() as conn:
            rows = await fetchall(
                conn, "SELECT v.id, v.version, v.sha256, m.name FROM versions v JOIN models m "
                f"ON m.id = v.model_id WHERE v.object_name IN ({placeholders(missing)})", missing)
            ids = [r["id"] for r in rows]
            await conn.execute(f"DELETE FROM aliases WHERE version_id IN ({placeholders(ids)})",
                               ids)
            await conn.executemany("DELETE FROM versions WHERE id = ?", [(i,) for i in ids])
            for r in rows:
                await journal.record(conn, journal.Fact(
                    action="orphan_removed", model=r["name"], principal="registry", at=now,
                    event=ModelEvent.DELETED, from_version=r["version"], sha256=r["sha256"],
                    reason="artifact missing from the object store"))
                report.removed_versions.append(f"{r['name']}@{r['version']}")
