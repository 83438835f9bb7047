"""Upload rows: an upload is 'pending' from begin until its commit or abort.

State changes are single guarded UPDATEs (``WHERE state = 'pending'``), so a commit and an
abort (expiry, restart) racing for the same upload cannot both win.
"""

from __future__ import annotations

from enum import StrEnum

import aiosqlite
import msgspec

from services.registry.catalog import fetchall, fetchone
from shared.contracts.registry import BeginUpload

_request_decoder = msgspec.json.Decoder(BeginUpload)


class UploadState(StrEnum):
    PENDING = "pending"
    COMMITTED = "committed"
    ABORTED = "aborted"


async def create(conn: aiosqlite.Connection, *, upload_id: str, object_name: str,
                 request: BeginUpload, principal: str, now: float, expires_at: float) -> None:
    await conn.execute(
        "INSERT INTO uploads (id, model, object_name, request, principal, state, created_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
        (upload_id, request.model, object_name, msgspec.json.encode(request).decode(),
         principal, now, expires_at))


async def get(conn: aiosqlite.Connection, upload_id: str) -> aiosqlite.Row | None:
    return await fetchone(conn, "SELECT * FROM uploads WHERE id = ?", (upload_id,))


def request_of(row: aiosqlite.Row) -> BeginUpload:
    return _request_decoder.decode(row["request"])


async def finish(conn: aiosqlite.Connection, upload_id: str, state: UploadState) -> bool:
    """Move a pending upload to ``state``; False if it was no longer pending."""
    cur = await conn.execute("UPDATE uploads SET state = ? WHERE id = ? AND state = 'pending'",
                             (state.value, upload_id))
    return cur.rowcount == 1


async def abort_pending(conn: aiosqlite.Connection, *, expired_before: float | None
                        ) -> list[aiosqlite.Row]:
    """Abort pending uploads that expired (or every pending one when ``expired_before`` is
    None: at start-up, no upload begun before can still be committed by this process)."""
    if expired_before is None:
        rows = await fetchall(conn, "SELECT * FROM uploads WHERE state = 'pending'")
    else:
        rows = await fetchall(conn, "SELECT * FROM uploads WHERE state = 'pending' AND "
                              "expires_at < ?", (expired_before,))
    await conn.executemany("UPDATE uploads SET state = 'aborted' WHERE id = ?",
                           [(r["id"],) for r in rows])
    return rows


async def prune(conn: aiosqlite.Connection, *, finished_before: float) -> int:
    """Forget finished uploads after a while (their objects are the versions' or gone)."""
    cur = await conn.execute("DELETE FROM uploads WHERE state != 'pending' AND created_at < ?",
                             (finished_before,))
    return cur.rowcount
