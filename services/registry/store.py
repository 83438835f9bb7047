"""Models and versions in the catalog: resolve refs, insert (allocating numbers), delete.

Every function takes the connection to run on, so the same code serves the reader and the
inside of a write transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from services.registry import records
from services.registry.catalog import fetchall, fetchone
from services.registry.names import Selector
from services.registry.records import VERSION_COLUMNS, epoch
from shared.contracts.registry import VersionInfo, VersionSpec
from shared.errors import NotFound

_SELECT = (f"SELECT {VERSION_COLUMNS}, v.details FROM versions v "
           "JOIN models m ON m.id = v.model_id")


@dataclass(frozen=True)
class NewVersion:
    """A version about to be committed: its artifact is already verified in the object store."""

    spec: VersionSpec
    sha256: str
    size_bytes: int
    object_name: str
    upload_id: str
    idempotency_key: str | None
    created_by: str
    created_at: float


async def model_row(conn: aiosqlite.Connection, name: str) -> aiosqlite.Row | None:
    return await fetchone(conn, "SELECT * FROM models WHERE name = ?", (name,))


async def require_model(conn: aiosqlite.Connection, name: str) -> aiosqlite.Row:
    row = await model_row(conn, name)
    if row is None:
        raise NotFound(f"no model named {name!r}", details={"model": name})
    return row


async def ensure_model(conn: aiosqlite.Connection, name: str, now: float) -> aiosqlite.Row:
    await conn.execute("INSERT OR IGNORE INTO models (name, created_at, updated_at) "
                       "VALUES (?, ?, ?)", (name, now, now))
    return await require_model(conn, name)


async def resolve(conn: aiosqlite.Connection, name: str, sel: Selector) -> aiosqlite.Row:
    """The version row a ref names, or ``NotFound`` saying which part is missing."""
    if sel.version is not None:
        row = await fetchone(conn, f"{_SELECT} WHERE m.name = ? AND v.version = ?",
                             (name, sel.version))
        what = f"version {sel.version}"
    elif sel.alias is not None:
        row = await fetchone(conn, f"{_SELECT} JOIN aliases a ON a.version_id = v.id "
                             "WHERE m.name = ? AND a.alias = ?", (name, sel.alias))
        what = f"alias {sel.alias!r}"
    else:
        row = await fetchone(conn, f"{_SELECT} WHERE m.name = ? ORDER BY v.version DESC LIMIT 1",
                             (name,))
        what = "version"
    if row is None:
        await require_model(conn, name)
        raise NotFound(f"model {name!r} has no {what}", details={"model": name})
    return row


async def info(conn: aiosqlite.Connection, row: aiosqlite.Row, bucket: str) -> VersionInfo:
    more = await records.extras(conn, [row["id"]])
    return records.version_info(row, row["details"], more, bucket)


async def by_id(conn: aiosqlite.Connection, version_id: int) -> aiosqlite.Row | None:
    return await fetchone(conn, f"{_SELECT} WHERE v.id = ?", (version_id,))


async def by_idempotency_key(conn: aiosqlite.Connection, name: str, key: str
                             ) -> aiosqlite.Row | None:
    return await fetchone(conn, f"{_SELECT} WHERE m.name = ? AND v.idempotency_key = ?",
                          (name, key))


async def by_upload(conn: aiosqlite.Connection, upload_id: str) -> aiosqlite.Row | None:
    return await fetchone(conn, f"{_SELECT} WHERE v.upload_id = ?", (upload_id,))


async def insert_version(conn: aiosqlite.Connection, model: aiosqlite.Row, new: NewVersion
                         ) -> int:
    """Insert one version with the model's next number; call inside a write transaction, where
    the number is allocated: concurrent registrations get distinct, ordered numbers."""
    number = int(model["next_version"])
    await conn.execute("UPDATE models SET next_version = ?, updated_at = ? WHERE id = ?",
                       (number + 1, new.created_at, model["id"]))
    await _insert_rows(conn, model["id"], [(number, new)])
    return number


async def bulk_insert(conn: aiosqlite.Connection, name: str, batch: Iterable[NewVersion],
                      now: float) -> int:
    """Insert many versions of one model at once (seeding, imports): one statement per table."""
    model = await ensure_model(conn, name, now)
    first = int(model["next_version"])
    numbered = list(enumerate(batch, start=first))
    await _insert_rows(conn, model["id"], numbered)
    await conn.execute("UPDATE models SET next_version = ?, updated_at = ? WHERE id = ?",
                       (first + len(numbered), now, model["id"]))
    return len(numbered)


async def _insert_rows(conn: aiosqlite.Connection, model_id: int,
                       numbered: list[tuple[int, NewVersion]]) -> None:
    start = await fetchone(conn, "SELECT coalesce(max(id), 0) FROM versions")
    next_id = int(start[0]) + 1 if start else 1
    versions: list[tuple[Any, ...]] = []
    metrics: list[tuple[int, int, str, float]] = []
    tags: list[tuple[int, str, str]] = []
    for offset, (number, new) in enumerate(numbered):
        vid = next_id + offset
        s = new.spec
        versions.append((
            vid, model_id, number, new.created_at, new.created_by, s.format.value,
            epoch(s.trained_at), epoch(s.data_start), epoch(s.data_end), new.size_bytes,
            new.sha256, new.object_name, new.upload_id, new.idempotency_key,
            records.encode_details(s)))
        metrics.extend((vid, model_id, k, v) for k, v in s.metrics.items())
        tags.extend((vid, k, v) for k, v in s.tags.items())
    await conn.executemany(
        "INSERT INTO versions (id, model_id, version, created_at, created_by, format, "
        "trained_at, data_start, data_end, size_bytes, sha256, object_name, upload_id, "
        "idempotency_key, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", versions)
    await conn.executemany("INSERT INTO metrics (version_id, model_id, name, value) "
                           "VALUES (?,?,?,?)", metrics)
    await conn.executemany("INSERT INTO tags (version_id, key, value) VALUES (?,?,?)", tags)


async def delete_versions(conn: aiosqlite.Connection, ids: list[int]) -> None:
    """Delete rows (metrics, tags and alias history go by cascade); objects are the caller's."""
    await conn.executemany("DELETE FROM versions WHERE id = ?", [(i,) for i in ids])


async def unreferenced(conn: aiosqlite.Connection, object_names: Iterable[str]) -> list[str]:
    """Which of these objects no version points to any more (safe to delete)."""
    out = []
    for name in dict.fromkeys(object_names):
        if not await fetchall(conn, "SELECT 1 FROM versions WHERE object_name = ? LIMIT 1",
                              (name,)):
            out.append(name)
    return out
