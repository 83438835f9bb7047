"""Dataset rows in the catalog (``sql/0002_datasets.sql``): files, names, uploads, and the
conversion of rows to wire Structs. Every function takes the connection to run on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import aiosqlite
import msgspec

from services.registry.catalog import fetchall, fetchone
from services.registry.records import from_epoch
from shared.contracts import datasets as c
from shared.subjects import DatasetEvent

_report = msgspec.json.Decoder(c.ValidationReport)
_symbols = msgspec.json.Decoder(list[str])
_encode = msgspec.json.Encoder().encode

_SELECT = "SELECT n.name AS name, d.* FROM datasets d LEFT JOIN dataset_names n " \
          "ON n.sha256 = d.sha256"


@dataclass(frozen=True)
class Ingested:
    """What parsing and validating a file found (computed before the row is written)."""

    sha256: str
    format: str
    size_bytes: int
    rows: int
    symbols: list[str]
    start: float | None
    end: float | None
    frequency: str
    report: c.ValidationReport
    source: str = ""


async def insert_file(conn: aiosqlite.Connection, found: Ingested, *, object_name: str,
                      principal: str, now: float) -> None:
    report = found.report
    await conn.execute(
        "INSERT INTO datasets (sha256, object_name, format, size_bytes, rows, symbols, start_at, "
        "end_at, frequency, valid, n_errors, n_warnings, report, source, created_at, "
        "created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (found.sha256, object_name, found.format, found.size_bytes, found.rows,
         _encode(found.symbols).decode(), found.start, found.end, found.frequency,
         int(report.ok), len(report.errors), len(report.warnings), _encode(report).decode(),
         found.source, now, principal))


async def point_name(conn: aiosqlite.Connection, name: str, sha256: str, *, principal: str,
                     now: float) -> str:
    """Point ``name`` at a file; returns where it pointed before ("" if new). A move writes an
    ``events.dataset.named`` event to the outbox, in this transaction."""
    row = await fetchone(conn, "SELECT sha256 FROM dataset_names WHERE name = ?", (name,))
    previous = row[0] if row else ""
    if previous == sha256:
        return previous
    await conn.execute(
        "INSERT INTO dataset_names (name, sha256, updated_at, updated_by) VALUES (?,?,?,?) "
        "ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, "
        "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        (name, sha256, now, principal))
    event_id = uuid.uuid4().hex
    at = from_epoch(now)
    assert at is not None
    body = c.DatasetEvent(id=event_id, name=name, sha256=sha256, at=at, previous_sha256=previous,
                          principal=principal)
    await conn.execute("INSERT INTO outbox (subject, msg_id, payload) VALUES (?, ?, ?)",
                       (DatasetEvent.NAMED.value, event_id, _encode(body)))
    return previous


async def by_name(conn: aiosqlite.Connection, name: str) -> aiosqlite.Row | None:
    return await fetchone(conn, "SELECT n.name AS name, d.* FROM dataset_names n JOIN datasets d "
                          "ON d.sha256 = n.sha256 WHERE n.name = ?", (name,))


async def by_sha256(conn: aiosqlite.Connection, sha256: str) -> aiosqlite.Row | None:
    return await fetchone(conn, f"{_SELECT} WHERE d.sha256 = ? ORDER BY n.name LIMIT 1",
                          (sha256,))


async def page(conn: aiosqlite.Connection, req: c.ListDatasets) -> list[aiosqlite.Row]:
    """Names in order, after ``cursor``, starting with ``prefix``; one more than the limit."""
    return await fetchall(
        conn, "SELECT n.name AS name, d.* FROM dataset_names n JOIN datasets d "
        "ON d.sha256 = n.sha256 WHERE substr(n.name, 1, ?) = ? AND n.name > ? "
        "ORDER BY n.name LIMIT ?",
        (len(req.prefix), req.prefix, req.cursor, req.limit + 1))


def info(row: aiosqlite.Row, bucket: str, *, created: bool = False) -> c.DatasetInfo:
    created_at = from_epoch(row["created_at"])
    assert created_at is not None
    return c.DatasetInfo(
        name=row["name"] or "", sha256=row["sha256"], format=row["format"],
        size_bytes=row["size_bytes"], rows=row["rows"], symbols=_symbols.decode(row["symbols"]),
        start=from_epoch(row["start_at"]), end=from_epoch(row["end_at"]),
        frequency=row["frequency"], valid=bool(row["valid"]),
        report=_report.decode(row["report"]), bucket=bucket, object_name=row["object_name"],
        created_at=created_at, created_by=row["created_by"], source=row["source"],
        created=created)


def summary(row: aiosqlite.Row) -> c.DatasetSummary:
    return c.DatasetSummary(
        name=row["name"] or "", sha256=row["sha256"], format=row["format"],
        size_bytes=row["size_bytes"], rows=row["rows"], symbols=_symbols.decode(row["symbols"]),
        start=from_epoch(row["start_at"]), end=from_epoch(row["end_at"]),
        frequency=row["frequency"], valid=bool(row["valid"]), errors=row["n_errors"],
        warnings=row["n_warnings"], created_at=from_epoch(row["created_at"]),
        source=row["source"])


# --- uploads --------------------------------------------------------------------------------


async def create_upload(conn: aiosqlite.Connection, *, upload_id: str, req: c.BeginDatasetUpload,
                        object_name: str, principal: str, now: float, expires_at: float
                        ) -> None:
    await conn.execute(
        "INSERT INTO dataset_uploads (id, name, format, source, object_name, principal, state, "
        "created_at, expires_at) VALUES (?,?,?,?,?,?,'pending',?,?)",
        (upload_id, req.name, req.format, req.source, object_name, principal, now, expires_at))


async def upload(conn: aiosqlite.Connection, upload_id: str) -> aiosqlite.Row | None:
    return await fetchone(conn, "SELECT * FROM dataset_uploads WHERE id = ?", (upload_id,))


async def finish_upload(conn: aiosqlite.Connection, upload_id: str, state: str) -> bool:
    """Move a pending upload to ``state``; False if it was no longer pending."""
    cur = await conn.execute(
        "UPDATE dataset_uploads SET state = ? WHERE id = ? AND state = 'pending'",
        (state, upload_id))
    return cur.rowcount == 1


async def abort_pending(conn: aiosqlite.Connection, *, expired_before: float | None
                        ) -> list[aiosqlite.Row]:
    """Abort expired pending uploads (every pending one at start-up: no commit begun before
    a restart can still come from this process); prune finished ones older than a week."""
    if expired_before is None:
        rows = await fetchall(conn, "SELECT * FROM dataset_uploads WHERE state = 'pending'")
    else:
        rows = await fetchall(conn, "SELECT * FROM dataset_uploads WHERE state = 'pending' "
                              "AND expires_at < ?", (expired_before,))
    await conn.executemany("UPDATE dataset_uploads SET state = 'aborted' WHERE id = ?",
                           [(r["id"],) for r in rows])
    return rows


async def kept_objects(conn: aiosqlite.Connection) -> set[str]:
    """Objects the sweep must not touch: every file's, and every pending upload's."""
    rows = await fetchall(conn, "SELECT object_name FROM datasets UNION "
                          "SELECT object_name FROM dataset_uploads WHERE state = 'pending'")
    return {r[0] for r in rows}
