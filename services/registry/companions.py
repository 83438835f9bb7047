"""Companion versions: a version whose ``evaluation`` tag names another version (``name@N``), as
``train_model`` registers each model version's out-of-sample evaluation beside it in
``<model>.evaluation``.

Retention treats the pair as one. Deleting a version (one by one, a cleanup, a sweep's pruning)
deletes the companion it names, unless an alias points to the companion or another remaining
version names it too; and a cleanup of the companions' own model keeps every companion a
remaining version still names (the production model's evaluation outlives the N newest
evaluations). Without this, a cleanup of ``<model>`` left every evaluation behind, and a cleanup
of everything deleted the evaluations of the very versions it kept.
"""

from __future__ import annotations

import aiosqlite

from services.registry import names
from services.registry.catalog import fetchall, fetchone, placeholders
from shared.errors import InvalidRequest

TAG = "evaluation"

#: SQL: the version ``v`` of model ``m`` is named by some remaining version's companion tag.
NAMED = ("EXISTS (SELECT 1 FROM tags t WHERE t.key = 'evaluation' "
         "AND t.value = m.name || '@' || v.version)")

_ROW = ("SELECT v.*, m.name AS model, "
        "EXISTS (SELECT 1 FROM aliases a WHERE a.version_id = v.id) AS aliased, "
        f"{NAMED} AS named "
        "FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.version = ?")


async def named_by(conn: aiosqlite.Connection, version_ids: list[int]) -> list[str]:
    """The companion refs these versions name (read before they are deleted: tags cascade)."""
    if not version_ids:
        return []
    rows = await fetchall(conn, f"SELECT version_id, value FROM tags WHERE key = ? AND "
                                f"version_id IN ({placeholders(version_ids)})", (TAG, *version_ids))
    by_version = {r[0]: r[1] for r in rows}  # in the order of ``version_ids``, as reported
    return list(dict.fromkeys(by_version[i] for i in version_ids if i in by_version))


async def unkept(conn: aiosqlite.Connection, refs: list[str]) -> list[aiosqlite.Row]:
    """Of these companions (their namers already deleted), those nothing keeps any more: no
    alias points to them and no remaining version names them."""
    out = []
    for ref in refs:
        try:
            name, sel = names.ref(ref)
        except InvalidRequest:  # a tag is free text: a malformed one names nothing
            continue
        if sel.version is None:
            continue
        row = await fetchone(conn, _ROW, (name, sel.version))
        if row is not None and not row["aliased"] and not row["named"]:
            out.append(row)
    return out
