"""Aliases: set, move, promote, roll back, delete. Each move is audited and evented.

``aliases`` holds where an alias points now; ``alias_history`` is the stack of where it pointed
before. A move pushes the old target; rollback pops it, so repeated rollbacks walk back through
earlier versions instead of flipping between the last two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from services.registry import journal, names, store
from services.registry.catalog import Catalog, fetchone
from services.registry.events import Publisher
from shared.contracts.registry import (
    PRODUCTION,
    AliasChange,
    AliasList,
    DeleteAlias,
    Promote,
    Rollback,
    SetAlias,
)
from shared.errors import Conflict, NotFound
from shared.subjects import ModelEvent


@dataclass(frozen=True)
class Target:
    id: int
    version: int
    sha256: str


async def current(conn: aiosqlite.Connection, model_id: int, alias: str) -> Target | None:
    row = await fetchone(conn, "SELECT v.id, v.version, v.sha256 FROM aliases a JOIN versions v "
                         "ON v.id = a.version_id WHERE a.model_id = ? AND a.alias = ?",
                         (model_id, alias))
    return None if row is None else Target(row[0], row[1], row[2])


class Aliases:
    """Alias operations over the catalog; events go out through ``publisher`` after commit."""

    def __init__(self, catalog: Catalog, publisher: Publisher,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog, self.publisher, self.clock = catalog, publisher, clock

    async def set(self, req: SetAlias, principal: str) -> AliasChange:
        # Moving production by hand is a promotion, whichever subject asked for it.
        action = "promote" if req.alias == PRODUCTION else "set_alias"
        return await self._move(req.model, req.alias, req.version, req.reason, principal, action)

    async def promote(self, req: Promote, principal: str) -> AliasChange:
        return await self._move(req.model, PRODUCTION, req.version, req.reason, principal,
                                "promote")

    async def _move(self, model: str, alias: str, version: int | str, reason: str,
                    principal: str, action: str) -> AliasChange:
        name, alias = names.model_name(model), names.alias(alias)
        sel = names.selector(version)
        reason = names.text("reason", reason, 1024)
        async with self.catalog.write() as conn:
            row = await store.resolve(conn, name, sel)
            target = Target(row["id"], row["version"], row["sha256"])
            model_id = (await store.require_model(conn, name))["id"]
            before = await current(conn, model_id, alias)
            if before is not None and before.id == target.id:
                return AliasChange(model=name, alias=alias, version=target.version,
                                   previous=target.version, changed=False)
            if before is not None:
                await conn.execute("INSERT INTO alias_history (model_id, alias, version_id) "
                                   "VALUES (?, ?, ?)", (model_id, alias, before.id))
            await self._point(conn, model_id, alias, target.id)
            event = ModelEvent.PROMOTED if action == "promote" else ModelEvent.ALIAS_MOVED
            await self._record(conn, name, alias, before, target, principal, reason, action,
                               event)
        await self.publisher.flush()
        return AliasChange(model=name, alias=alias, version=target.version,
                           previous=before.version if before else None)

    async def rollback(self, req: Rollback, principal: str) -> AliasChange:
        name, alias = names.model_name(req.model), names.alias(req.alias)
        reason = names.text("reason", req.reason, 1024)
        async with self.catalog.write() as conn:
            model_id = (await store.require_model(conn, name))["id"]
            before = await _existing(conn, model_id, name, alias)
            target = await self._pop(conn, model_id, alias, before)
            await self._point(conn, model_id, alias, target.id)
            await self._record(conn, name, alias, before, target, principal, reason,
                               "rollback", ModelEvent.ROLLED_BACK)
        await self.publisher.flush()
        return AliasChange(model=name, alias=alias, version=target.version,
                           previous=before.version)

    async def _pop(self, conn: aiosqlite.Connection, model_id: int, alias: str,
                   before: Target) -> Target:
        """The newest earlier target that still exists and differs from the current one."""
        while True:
            row = await fetchone(
                conn, "SELECT h.id, v.id, v.version, v.sha256 FROM alias_history h JOIN versions "
                "v ON v.id = h.version_id WHERE h.model_id = ? AND h.alias = ? "
                "ORDER BY h.id DESC LIMIT 1", (model_id, alias))
            if row is None:
                raise Conflict(f"alias {alias!r} has no earlier version to roll back to",
                               details={"alias": alias, "version": before.version})
            await conn.execute("DELETE FROM alias_history WHERE id = ?", (row[0],))
            if row[1] != before.id:
                return Target(row[1], row[2], row[3])

    async def delete(self, req: DeleteAlias, principal: str) -> AliasChange:
        name, alias = names.model_name(req.model), names.alias(req.alias)
        reason = names.text("reason", req.reason, 1024)
        async with self.catalog.write() as conn:
            model_id = (await store.require_model(conn, name))["id"]
            before = await _existing(conn, model_id, name, alias)
            await conn.execute("DELETE FROM aliases WHERE model_id = ? AND alias = ?",
                               (model_id, alias))
            await conn.execute("DELETE FROM alias_history WHERE model_id = ? AND alias = ?",
                               (model_id, alias))
            await self._record(conn, name, alias, before, None, principal, reason,
                               "delete_alias", ModelEvent.ALIAS_DELETED)
        await self.publisher.flush()
        return AliasChange(model=name, alias=alias, version=None, previous=before.version)

    async def list(self, model: str) -> AliasList:
        name = names.model_name(model)
        model_row = await store.require_model(self.catalog.reader, name)
        rows = await self.catalog.fetchall(
            "SELECT a.alias, v.version FROM aliases a JOIN versions v ON v.id = a.version_id "
            "WHERE a.model_id = ? ORDER BY a.alias", (model_row["id"],))
        return AliasList(model=name, aliases={r[0]: r[1] for r in rows})

    async def _point(self, conn: aiosqlite.Connection, model_id: int, alias: str,
                     version_id: int) -> None:
        await conn.execute(
            "INSERT INTO aliases (model_id, alias, version_id, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id, "
            "updated_at = excluded.updated_at", (model_id, alias, version_id, self.clock()))

    async def _record(self, conn: aiosqlite.Connection, model: str, alias: str,
                      before: Target | None, after: Target | None, principal: str, reason: str,
                      action: str, event: ModelEvent) -> None:
        await journal.record(conn, journal.Fact(
            action=action, model=model, principal=principal, at=self.clock(), event=event,
            alias=alias, from_version=before.version if before else None,
            to_version=after.version if after else None, sha256=after.sha256 if after else "",
            previous_sha256=before.sha256 if before else "", reason=reason))


async def _existing(conn: aiosqlite.Connection, model_id: int, name: str, alias: str) -> Target:
    """What ``alias`` points at now, or ``NotFound``."""
    before = await current(conn, model_id, alias)
    if before is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}",
                       details={"model": name, "alias": alias})
    return before
