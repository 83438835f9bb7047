"""Deleting versions: one by one, or keeping the N newest per model (cleanup).

A version an alias points to is never deleted: a single delete is refused, and cleanup keeps
it (on top of the N newest). A deleted version takes its companion (its ``evaluation``) along,
and a cleanup keeps a companion that a remaining version names (``companions``). Rows go
first, in one transaction; objects no row names any more are deleted after commit. A crash in
between leaves unreferenced objects, which the sweep removes: never a row without its object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiosqlite

from services.registry import companions, journal, names, store
from services.registry.artifacts import ArtifactStore
from services.registry.catalog import Catalog, fetchall
from services.registry.events import Publisher
from shared.contracts.registry import Cleanup, CleanupReply, DeleteReply, DeleteVersion
from shared.errors import Conflict, InvalidRequest, QuantopsError
from shared.subjects import ModelEvent

log = logging.getLogger(__name__)


@dataclass
class _Gone:
    """What one deletion took: objects no row names any more, companions deleted along."""

    objects: list[str] = field(default_factory=list)
    companions: list[str] = field(default_factory=list)
    companion_bytes: int = 0


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
            gone = await self._delete_rows(conn, name, [row], principal, reason, "delete")
        await self._after_commit(gone.objects)
        return DeleteReply(deleted=[f"{name}@{row['version']}", *gone.companions],
                           bytes_freed=row["size_bytes"] + gone.companion_bytes)

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
            # Older than the N newest; aliased ones, and companions a remaining version names
            # (the evaluation of a kept model version), are reported and kept.
            old = await fetchall(
                conn, "SELECT v.*, m.name AS model, "
                "EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id) AS aliased, "
                f"{companions.NAMED} AS named "
                "FROM versions v JOIN models m ON m.id = v.model_id WHERE v.model_id = ? "
                "ORDER BY v.version DESC LIMIT -1 OFFSET ?", (row["id"], keep))
            doomed = [r for r in old if not r["aliased"] and not r["named"]]
            kept = [f"{model}@{r['version']}" for r in old if r["aliased"] or r["named"]]
            gone = _Gone()
            if doomed and not dry_run:
                gone = await self._delete_rows(conn, model, doomed, principal, reason,
                                               "cleanup")
        if not dry_run:
            await self._after_commit(gone.objects)
        deleted = [f"{model}@{r['version']}" for r in doomed] + gone.companions
        return deleted, kept, sum(r["size_bytes"] for r in doomed) + gone.companion_bytes

    async def _delete_rows(self, conn: aiosqlite.Connection, model: str,
                           rows: list[aiosqlite.Row], principal: str, reason: str,
                           action: str) -> _Gone:
        """Delete version rows, audit and event each, then the companions nothing keeps any
        more; return the objects no row names any more and the companions deleted."""
        now = self.clock()
        refs = await companions.named_by(conn, [r["id"] for r in rows])
        await store.delete_versions(conn, [r["id"] for r in rows])
        for r in rows:
            await journal.record(conn, journal.Fact(
                action=action, model=model, principal=principal, at=now,
                event=ModelEvent.DELETED, from_version=r["version"], sha256=r["sha256"],
                reason=reason))
        gone = _Gone(objects=[r["object_name"] for r in rows])
        for c in await companions.unkept(conn, refs):
            why = f"{reason} (companion of a deleted {model} version)"
            more = await self._delete_rows(conn, c["model"], [c], principal, why, action)
            gone.objects += more.objects
            gone.companions += [f"{c['model']}@{c['version']}", *more.companions]
            gone.companion_bytes += c["size_bytes"] + more.companion_bytes
        gone.objects = await store.unreferenced(conn, gone.objects)
        return gone

    async def _after_commit(self, objects: list[str]) -> None:
        for name in objects:
            try:
                await self.artifacts.delete(name)
            except QuantopsError:  # the sweep deletes unreferenced objects later
                log.warning("artifact not deleted yet", extra={"object": name})
        await self.publisher.flush()
