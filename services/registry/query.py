"""Version and model lists: filters and sorts compiled to SQL, keyset pagination by cursor.

Two plans. Usually the sort drives: sorting by a metric walks the ``metrics_by_value`` index of
that (model, metric) in order and checks each filter with a primary-key lookup, so a page costs
about ``limit / selectivity`` index steps, whatever the catalog's size. When a metric filter
matches few rows (``DRIVE_BELOW``), it drives instead: its index range, then a sort of those few
rows. The cursor is the last row's (sort value, id): the next page starts strictly after it,
stable under inserts, and valid under either plan.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import msgspec

from services.registry import names
from services.registry.catalog import fetchone
from services.registry.records import VERSION_COLUMNS, epoch
from shared.contracts.bounds import MAX_QUERY_PAGE_ITEMS
from shared.contracts.registry import ListVersions, MetricFilter
from shared.errors import InvalidRequest

MAX_LIMIT = MAX_QUERY_PAGE_ITEMS
DATE_COLUMNS = {"created_at", "trained_at", "data_start", "data_end"}
_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "=", "!=": "!="}


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    sort: str
    value: float | int
    id: int


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def decode_cursor(text: str, sort: str) -> Cursor | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = msgspec.json.decode(raw, type=Cursor)
    except (ValueError, msgspec.DecodeError) as e:
        raise InvalidRequest("invalid cursor: pass back next_cursor unchanged",
                             details={"field": "cursor"}) from e
    if cursor.sort != sort:
        raise InvalidRequest("cursor belongs to another sort order",
                             details={"field": "cursor", "sort": cursor.sort})
    return cursor


def limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}",
                             details={"field": "limit"})
    return value


#: A metric filter matching fewer rows than this drives the query (its index range, then a
#: small sort); otherwise the sort order drives it (see the module docstring).
DRIVE_BELOW = 2000


@dataclass
class VersionQuery:
    """SQL for one page of ``ListVersions``."""

    sql: str
    params: list[Any] = field(default_factory=list)


async def pick_driver(conn: aiosqlite.Connection, model_id: int, filters: list[MetricFilter]
                      ) -> MetricFilter | None:
    """The most selective metric filter, if it is selective enough to drive the query.

    Walking the sort index costs ``limit / selectivity`` steps, which explodes for a rare
    match; counting each filter's index range (capped) costs little and tells which way wins.
    """
    best, best_count = None, DRIVE_BELOW
    for f in filters:
        row = await fetchone(conn, f"SELECT count(*) FROM (SELECT 1 FROM metrics WHERE "
                             f"model_id = ? AND name = ? AND value {_OPS[f.op]} ? LIMIT ?)",
                             (model_id, names.metric(f.name), f.value, DRIVE_BELOW))
        if row is not None and row[0] < best_count:
            best, best_count = f, row[0]
    return best


def versions_query(model_id: int, req: ListVersions, driver: MetricFilter | None = None
                   ) -> VersionQuery:
    descending = req.sort.startswith("-")
    cursor = decode_cursor(req.cursor, req.sort)
    source, value_expr, tie, where, params = _source(model_id, req.sort.lstrip("-+"), driver)
    _filters(req, where, params)
    if cursor is not None:
        where.append(f"({value_expr}, {tie}) {'<' if descending else '>'} (?, ?)")
        params += [cursor.value, cursor.id]
    order = "DESC" if descending else "ASC"
    sql = (f"SELECT {VERSION_COLUMNS}, {value_expr} AS sort_value FROM {source} "
           f"JOIN models m ON m.id = v.model_id WHERE {' AND '.join(where)} "
           f"ORDER BY {value_expr} {order}, {tie} {order} LIMIT ?")
    params.append(limit(req.limit) + 1)  # one more row tells whether a next page exists
    return VersionQuery(sql=sql, params=params)


def _source(model_id: int, key: str, driver: MetricFilter | None
            ) -> tuple[str, str, str, list[str], list[Any]]:
    """FROM clause, sort expression, tie-breaker, and the WHERE terms that pin the model.

    CROSS JOIN fixes the outer loop (SQLite never reorders it): either the sort's own index,
    so rows come out sorted and the scan stops at ``limit``, or the driving filter's range.
    The tie-breaker is always the version's row id, so a cursor works under either plan.
    """
    params: list[Any] = []
    if driver is not None:
        source = "metrics d CROSS JOIN versions v ON v.id = d.version_id"
        where = ["d.model_id = ?", "d.name = ?", f"d.value {_OPS[driver.op]} ?"]
        tail: list[Any] = [model_id, names.metric(driver.name), driver.value]
    else:
        source, where, tail = "versions v", ["v.model_id = ?"], [model_id]
    if key == "version":
        return source, "v.version", "v.id", where, params + tail
    if key in DATE_COLUMNS:
        return source, f"v.{key}", "v.id", [*where, f"v.{key} IS NOT NULL"], params + tail
    if driver is not None:
        source += " JOIN metrics s ON s.version_id = v.id AND s.name = ?"
        params.append(names.metric(key))
    else:
        source = "metrics s CROSS JOIN versions v ON v.id = s.version_id"
        where, tail = ["s.model_id = ?", "s.name = ?"], [model_id, names.metric(key)]
    return source, "s.value", "s.version_id", where, params + tail


def _filters(req: ListVersions, where: list[str], params: list[Any]) -> None:
    for f in req.metrics:
        where.append("EXISTS (SELECT 1 FROM metrics f WHERE f.version_id = v.id AND f.name = ? "
                     f"AND f.value {_OPS[f.op]} ?)")
        params += [names.metric(f.name), f.value]
    for key, tag in names.tags(req.tags).items():
        where.append("EXISTS (SELECT 1 FROM tags t WHERE t.version_id = v.id AND t.key = ? "
                     "AND t.value = ?)")
        params += [key, tag]
    for column, op, value in (("trained_at", ">=", req.trained_from),
                              ("trained_at", "<=", req.trained_to),
                              ("data_start", ">=", req.data_from),
                              ("data_end", "<=", req.data_to)):
        if value is not None:
            where.append(f"v.{column} {op} ?")
            params.append(epoch(value))


def next_cursor(req: ListVersions, rows: list[Any]) -> str:
    """A cursor after the last row of this page, or "" when there is no next page."""
    if len(rows) <= req.limit:
        return ""
    last = rows[req.limit - 1]
    return encode_cursor(Cursor(sort=req.sort, value=last["sort_value"], id=last["id"]))


def models_query(prefix: str, cursor: str, page: int) -> tuple[str, list[Any]]:
    """Models by name, with version counts and latest version (one grouped query)."""
    where: list[str] = ["1"]
    params: list[Any] = []
    if prefix:
        where.append("m.name >= ? AND m.name < ?")
        params += [prefix, prefix + "\U0010ffff"]
    if cursor:
        where.append("m.name > ?")
        params.append(_decode_name(cursor))
    sql = ("SELECT m.id, m.name, m.created_at, m.updated_at, count(v.id) AS versions, "
           "max(v.version) AS latest FROM models m LEFT JOIN versions v ON v.model_id = m.id "
           f"WHERE {' AND '.join(where)} GROUP BY m.id ORDER BY m.name LIMIT ?")
    params.append(limit(page) + 1)
    return sql, params


def model_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_name(cursor: str) -> str:
    try:
        return names.model_name(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
                                .decode())
    except (ValueError, InvalidRequest) as e:
        raise InvalidRequest("invalid cursor: pass back next_cursor unchanged",
                             details={"field": "cursor"}) from e
