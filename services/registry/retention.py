"""Deleting versions: one by one, or keeping the N newest per model (cleanup).

A version an alias points to is never deleted: a single delete is refused, and cleanup keeps
it (on top of the N newest). Rows go first, in one transaction; objects no row names any more
are deleted after commit. A crash in between leaves unreferenced objects, which the sweep
removes: never a row without its object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import aiosqlite

from services.registry import journal, names, store
from services.registry.artifacts import ArtifactStore
from services.registry.catalog import Catalog, fetchall
from services.registry.events import Publisher
from shared.contracts.registry import Cleanup, CleanupReply, DeleteReply, DeleteVersion
from shared.errors import Conflict, InvalidRequest, QuantopsError
from shared.subjects import ModelEvent

log = logging.getLogger(__name__)


class Retention:
    """Version deletion with the alias guard.

    Args:
        keep_default: N of cleanup when the request names none.
    """

    def __init__(self, catalog: Catalog, artifacts: ArtifactStore, publisher: Publisher, *,
                 keep_default: int, clock: Callable[[], float] = time.time) -> None:
        self.catalog, self.artifacts, self.publisher = catalog, artifacts, publisher
        self.keep_default = keep_default
        self.clock = clock

    async def delete(self, req: DeleteVersion, principal: str) -> DeleteReply:
        name, sel = names.ref(req.ref)
        reason = names.text("reason", req.reason, 1024)
        async with self.catalog.write() as conn:
            row = await store.resolve(conn, name, sel)
            pointing = [r[0] for r in await fetchall(
                conn, "SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias",
                (row["id"],))]
            if pointing:
                raise Conflict(
                    f"{name}@{row['version']} is the target of alias {', '.join(pointing)}: move "
                    "the alias first", details={"aliases": pointing, "version": row["version"]})
            objects = await self._delete_rows(conn, name, [row], principal, reason, "delete")
        await self._after_commit(objects)
        return DeleteReply(deleted=[f"{name}@{row['version']}"], bytes_freed=row["size_bytes"])

    async def cleanup(self, req: Cleanup, principal: str) -> CleanupReply:
        keep = self.keep_default if req.keep is None else req.keep
        if keep < 1:
            raise InvalidRequest("keep must be at least 1", details={"field": "keep"})
        reason = names.text("reason", req.reason, 1024) or f"cleanup: keep {keep} newest"
        if req.model:
            models = [names.model_name(req.model)]
            await store.require_model(self.catalog.reader, models[0])
        else:
            models = [r[0] for r in await self.catalog.fetchall(
                "SELECT name FROM models ORDER BY name")]
        reply = CleanupReply(dry_run=req.dry_run)
        for model in models:  # one transaction per model keeps each one short
            deleted, kept, freed = await self._cleanup_model(model, keep, req.dry_run,
                                                             principal, reason)
            reply = CleanupReply(deleted=reply.deleted + deleted,
                                 kept_for_aliases=reply.kept_for_aliases + kept,
                                 bytes_freed=reply.bytes_freed + freed, dry_run=req.dry_run)
        return reply

    async def _cleanup_model(self, model: str, keep: int, dry_run: bool, principal: str,
                             reason: str) -> tuple[list[str], list[str], int]:
        async with self.catalog.write() as conn:
            row = await store.model_row(conn, model)
            if row is None:
                return [], [], 0
            # Older than the N newest; aliased ones are reported and kept.
            old = await fetchall(
                conn, "SELECT v.*, m.name AS model, "
                "EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id) AS aliased "
                "FROM versions v JOIN models m ON m.id = v.model_id WHERE v.model_id = ? "
                "ORDER BY v.version DESC LIMIT -1 OFFSET ?", (row["id"], keep))
            doomed = [r for r in old if not r["aliased"]]
            kept = [f"{model}@{r['version']}" for r in old if r["aliased"]]
            objects: list[str] = []
            if doomed and not dry_run:
                objects = await self._delete_rows(conn, model, doomed, principal, reason,
                                                  "cleanup")
        if not dry_run:
            await self._after_commit(objects)
        deleted = [f"{model}@{r['version']}" for r in doomed]
        return deleted, kept, sum(r["size_bytes"] for r in doomed)

    async def _delete_rows(self, conn: aiosqlite.Connection, model: str,
                           rows: list[aiosqlite.Row], principal: str, reason: str,
                           action: str) -> list[str]:
        """Delete version rows, audit and event each; return objects no row names any more."""
        now = self.clock()
        await store.delete_versions(conn, [r["id"] for r in rows])
        for r in rows:
            await journal.record(conn, journal.Fact(
                action=action, model=model, principal=principal, at=now,
                event=ModelEvent.DELETED, from_version=r["version"], sha256=r["sha256"],
                reason=reason))
        return await store.unreferenced(conn, [r["object_name"] for r in rows])

    async def _after_commit(self, objects: list[str]) -> None:
        for name in objects:
            try:
                await self.artifacts.delete(name)
            except QuantopsError:  # the sweep deletes unreferenced objects later
                log.warning("artifact not deleted yet", extra={"object": name})
        await self.publisher.flush()
