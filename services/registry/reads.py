"""Read-only operations: get a version, list versions and models, compare, audit log.

All of them run on the catalog's reader connection (WAL: never blocked by a registration).
"""

from __future__ import annotations

from typing import Any

from services.registry import journal, names, query, records, store
from services.registry.catalog import Catalog
from services.registry.compare import MetricDirections, compare
from shared.contracts.registry import (
    AuditPage,
    CompareVersions,
    Comparison,
    ListAudit,
    ListModels,
    ListVersions,
    ModelPage,
    ModelSummary,
    VersionInfo,
    VersionPage,
    VersionRequest,
)
from shared.errors import InvalidRequest

MAX_COMPARE = 50


class Reads:
    """Queries over the catalog.

    Args:
        bucket: object-store bucket named in every ``ArtifactInfo``.
        directions: which way each metric is better, for ``compare``.
    """

    def __init__(self, catalog: Catalog, *, bucket: str, directions: MetricDirections) -> None:
        self.catalog, self.bucket, self.directions = catalog, bucket, directions

    async def get(self, req: VersionRequest) -> VersionInfo:
        name, sel = names.ref(req.ref)
        row = await store.resolve(self.catalog.reader, name, sel)
        return await store.info(self.catalog.reader, row, self.bucket)

    async def versions(self, req: ListVersions) -> VersionPage:
        name = names.model_name(req.model)
        model = await store.require_model(self.catalog.reader, name)
        driver = await query.pick_driver(self.catalog.reader, model["id"], req.metrics)
        q = query.versions_query(model["id"], req, driver)
        rows = await self.catalog.fetchall(q.sql, q.params)
        page = rows[:req.limit]
        more = await records.extras(self.catalog.reader, [r["id"] for r in page])
        return VersionPage(items=[records.version_summary(r, more) for r in page],
                           next_cursor=query.next_cursor(req, rows))

    async def models(self, req: ListModels) -> ModelPage:
        sql, params = query.models_query(req.prefix, req.cursor, req.limit)
        rows = await self.catalog.fetchall(sql, params)
        page = rows[:req.limit]
        aliases: dict[int, dict[str, int]] = {r["id"]: {} for r in page}
        if page:
            ids = list(aliases)
            for a in await self.catalog.fetchall(
                    "SELECT a.model_id, a.alias, v.version FROM aliases a JOIN versions v "
                    f"ON v.id = a.version_id WHERE a.model_id IN ({','.join('?' * len(ids))})",
                    ids):
                aliases[a[0]][a[1]] = a[2]
        items = [ModelSummary(name=r["name"], versions=r["versions"], latest_version=r["latest"],
                              aliases=aliases[r["id"]], created_at=records.at(r["created_at"]),
                              updated_at=records.at(r["updated_at"])) for r in page]
        more = len(rows) > req.limit
        return ModelPage(items=items,
                         next_cursor=query.model_cursor(page[-1]["name"]) if more else "")

    async def compare(self, req: CompareVersions) -> Comparison:
        if not 2 <= len(req.refs) <= MAX_COMPARE:
            raise InvalidRequest(f"compare takes 2 to {MAX_COMPARE} refs",
                                 details={"field": "refs"})
        infos = [await self.get(VersionRequest(ref=ref)) for ref in req.refs]
        refs = [i.ref for i in infos]
        return Comparison(refs=refs, metrics=compare(refs, [i.spec.metrics for i in infos],
                                                     self.directions))

    async def audit(self, req: ListAudit) -> AuditPage:
        where: list[str] = ["1"]
        params: list[Any] = []
        if req.model:
            where.append("model = ?")
            params.append(names.model_name(req.model))
        if req.cursor:
            if not req.cursor.isdigit():
                raise InvalidRequest("invalid cursor: pass back next_cursor unchanged",
                                     details={"field": "cursor"})
            where.append("id < ?")
            params.append(int(req.cursor))
        params.append(query.limit(req.limit) + 1)
        rows = await self.catalog.fetchall(
            f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", params)
        page = rows[:req.limit]
        cursor = str(page[-1]["id"]) if len(rows) > req.limit else ""
        return AuditPage(items=[journal.audit_entry(r) for r in page], next_cursor=cursor)

    async def counts(self) -> dict[str, int]:
        row = await self.catalog.fetchone(
            "SELECT (SELECT count(*) FROM models), count(*), coalesce(sum(size_bytes), 0), "
            "(SELECT count(*) FROM uploads WHERE state = 'pending') FROM versions")
        assert row is not None
        return {"models": row[0], "versions": row[1], "artifact_bytes": row[2],
                "pending_uploads": row[3]}
