"""The catalog on a real SQLite file: migrations, version numbering, queries in SQL with keyset
pagination, the alias stack behind rollback, and cleanup's alias guard. The object store is
not involved here (its side is covered by the integration tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from services.registry import query, store
from services.registry.aliases import Aliases
from services.registry.catalog import Catalog, migrations
from services.registry.retention import Retention
from shared.contracts.registry import (
    Cleanup,
    DeleteVersion,
    ListVersions,
    MetricFilter,
    Promote,
    Rollback,
    SetAlias,
    VersionSpec,
)
from shared.errors import Conflict, InvalidRequest, NotFound


class NoEvents:
    async def flush(self) -> int:
        return 0


class Objects:
    bucket = "test"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def delete(self, name: str, nuid: str | None = None) -> None:
        self.deleted.append(name)


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    cat = Catalog(tmp_path / "registry" / "catalog.db")
    await cat.open()
    yield cat
    await cat.close()


def new(i: int, **metrics: float) -> store.NewVersion:
    return store.NewVersion(
        spec=VersionSpec(metrics=metrics, tags={"parity": "even" if i % 2 == 0 else "odd"},
                         trained_at=datetime(2024, 1, 1 + i % 28, tzinfo=UTC)),
        sha256=f"{i:064x}", size_bytes=100 + i, object_name=f"artifacts/{i:032x}",
        upload_id=f"{i:032x}", idempotency_key=None, created_by="t", created_at=time.time())


async def add(catalog: Catalog, model: str, *versions: store.NewVersion) -> list[int]:
    out = []
    for v in versions:
        async with catalog.write() as conn:
            row = await store.ensure_model(conn, model, time.time())
            out.append(await store.insert_version(conn, row, v))
    return out


async def test_migrations_apply_once_and_record_the_schema_version(catalog: Catalog) -> None:
    assert await catalog.schema_version() == len(migrations()) >= 1
    assert await catalog.migrate() == []  # nothing new on a second start


async def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    sql.mkdir()
    (sql / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);")
    (sql / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);")
    cat = Catalog(tmp_path / "c.db", migrations_dir=sql)
    with pytest.raises(Exception, match="nowhere"):
        await cat.open()
    assert await cat.schema_version() == 1
    tables = await cat.writer.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")
    assert {r[0] for r in tables} == {"a"}
    await cat.close()


async def test_concurrent_inserts_get_distinct_consecutive_numbers(catalog: Catalog) -> None:
    numbers = await asyncio.gather(*(add(catalog, "m", new(i)) for i in range(8)))
    assert sorted(n for [n] in numbers) == list(range(1, 9))


async def _pages(catalog: Catalog, model_id: int, req: ListVersions,
                 driver: MetricFilter | None) -> list[int]:
    seen: list[int] = []
    while True:
        q = query.versions_query(model_id, req, driver)
        rows = await catalog.fetchall(q.sql, q.params)
        seen += [r["version"] for r in rows[:req.limit]]
        cursor = query.next_cursor(req, rows)
        if not cursor:
            return seen
        req = msgspec.structs.replace(req, cursor=cursor)


@pytest.mark.parametrize("sort", ["-rmse", "acc", "version", "-version"])
async def test_filtered_sorted_pages_follow_the_cursor_under_both_plans(
    catalog: Catalog, sort: str
) -> None:
    await add(catalog, "m", *(new(i, acc=0.5 + i / 100, rmse=0.1 - i / 1000) for i in range(30)))
    await add(catalog, "other", *(new(i, acc=0.99) for i in range(5)))
    model_id = (await store.require_model(catalog.reader, "m"))["id"]
    acc = MetricFilter(name="acc", op=">=", value=0.6)
    req = ListVersions(model="m", metrics=[acc], tags={"parity": "even"}, sort=sort, limit=4)
    by_sort = await _pages(catalog, model_id, req, None)
    by_filter = await _pages(catalog, model_id, req, acc)
    # acc >= 0.6: i >= 10; even i: odd version numbers 11..29.
    expected = list(range(11, 30, 2))
    assert by_sort == by_filter
    assert by_sort == (expected[::-1] if sort == "-version" else expected)


async def test_a_selective_filter_is_picked_to_drive(catalog: Catalog) -> None:
    await add(catalog, "m", *(new(i, acc=i / 10) for i in range(10)))
    model_id = (await store.require_model(catalog.reader, "m"))["id"]
    broad = MetricFilter(name="acc", op=">=", value=0.0)
    rare = MetricFilter(name="acc", op=">", value=0.85)
    assert await query.pick_driver(catalog.reader, model_id, [broad, rare]) == rare
    q = query.versions_query(model_id, ListVersions(model="m", metrics=[rare], sort="-acc"), rare)
    plan = " ".join(r[3] for r in await catalog.fetchall(f"EXPLAIN QUERY PLAN {q.sql}",
                                                         q.params))
    assert "metrics_by_value" in plan


async def test_metric_sort_walks_the_index_not_a_temp_sort(catalog: Catalog) -> None:
    q = query.versions_query(1, ListVersions(
        model="m", metrics=[MetricFilter(name="acc", op=">", value=0.5)], sort="-rmse"))
    plan = " ".join(r[3] for r in await catalog.fetchall(f"EXPLAIN QUERY PLAN {q.sql}",
                                                         q.params))
    assert "metrics_by_value" in plan and "TEMP B-TREE" not in plan


async def test_cursor_tampering_and_foreign_sorts_are_refused(catalog: Catalog) -> None:
    for cursor in ("garbage", "eyJ4IjoxfQ"):
        with pytest.raises(InvalidRequest):
            query.versions_query(1, ListVersions(model="m", cursor=cursor))
    good = query.encode_cursor(query.Cursor(sort="-version", value=3, id=3))
    with pytest.raises(InvalidRequest, match="another sort"):
        query.versions_query(1, ListVersions(model="m", sort="rmse", cursor=good))
    with pytest.raises(InvalidRequest):
        query.versions_query(1, ListVersions(model="m", limit=1000))


async def test_rollback_walks_back_through_history(catalog: Catalog) -> None:
    await add(catalog, "m", *(new(i) for i in range(4)))
    aliases = Aliases(catalog, NoEvents())  # type: ignore[arg-type]
    for v in (1, 2, 3, 4):
        await aliases.promote(Promote(model="m", version=v), "alice")
    same = await aliases.set(SetAlias(model="m", alias="production", version=4), "alice")
    assert not same.changed
    walked = [(await aliases.rollback(Rollback(model="m"), "bob")).version for _ in range(3)]
    assert walked == [3, 2, 1]
    with pytest.raises(Conflict):
        await aliases.rollback(Rollback(model="m"), "bob")
    with pytest.raises(NotFound):
        await aliases.rollback(Rollback(model="m", alias="staging"), "bob")


async def test_rollback_skips_versions_deleted_since(catalog: Catalog) -> None:
    await add(catalog, "m", *(new(i) for i in range(3)))
    aliases = Aliases(catalog, NoEvents())  # type: ignore[arg-type]
    retention = Retention(catalog, Objects(), NoEvents(), keep_default=5)  # type: ignore[arg-type]
    for v in (1, 2, 3):
        await aliases.promote(Promote(model="m", version=v), "alice")
    await retention.delete(DeleteVersion(ref="m@2"), "alice")
    assert (await aliases.rollback(Rollback(model="m"), "bob")).version == 1


async def test_cleanup_keeps_newest_and_aliased_and_deletes_objects(catalog: Catalog) -> None:
    await add(catalog, "m", *(new(i) for i in range(8)))
    objects = Objects()
    retention = Retention(catalog, objects, NoEvents(), keep_default=3)  # type: ignore[arg-type]
    aliases = Aliases(catalog, NoEvents())  # type: ignore[arg-type]
    await aliases.set(SetAlias(model="m", alias="staging", version=2), "alice")
    with pytest.raises(Conflict):
        await retention.delete(DeleteVersion(ref="m@staging"), "alice")
    reply = await retention.cleanup(Cleanup(), "alice")
    assert reply.deleted == ["m@5", "m@4", "m@3", "m@1"]
    assert reply.kept_for_aliases == ["m@2"]
    assert reply.bytes_freed == sum(100 + i for i in (4, 3, 2, 0))
    assert len(objects.deleted) == 4
    left = await catalog.fetchall("SELECT version FROM versions ORDER BY version")
    assert [r[0] for r in left] == [2, 6, 7, 8]
    orphans = await catalog.fetchall("SELECT count(*) FROM metrics m LEFT JOIN versions v "
                                     "ON v.id = m.version_id WHERE v.id IS NULL")
    assert orphans[0][0] == 0
