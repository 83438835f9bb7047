"""Catalog rows <-> wire Structs, and the time convention (UTC epoch seconds in SQLite)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import msgspec

from services.registry.catalog import fetchall, placeholders
from shared.contracts.registry import (
    ArtifactFormat,
    ArtifactInfo,
    Lineage,
    VersionInfo,
    VersionSpec,
    VersionSummary,
)

#: The columns every version query selects, so one row shape feeds every conversion.
VERSION_COLUMNS = (
    "v.id, m.name AS model, v.version, v.created_at, v.created_by, v.format, v.trained_at, "
    "v.data_start, v.data_end, v.size_bytes, v.sha256, v.object_name, v.idempotency_key"
)


class Details(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON ``details`` column: metadata that is returned but never filtered on."""

    features: list[str] = []
    hyperparameters: dict[str, Any] = {}
    lineage: Lineage = Lineage()
    description: str = ""


_details_decoder = msgspec.json.Decoder(Details)


def epoch(value: datetime | None) -> float | None:
    """A datetime as UTC epoch seconds; a naive datetime is taken to be UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def encode_details(spec: VersionSpec) -> str:
    details = Details(features=spec.features, hyperparameters=spec.hyperparameters,
                      lineage=spec.lineage, description=spec.description)
    return msgspec.json.encode(details).decode()


class Extras(msgspec.Struct, kw_only=True):
    """Metrics, tags and aliases of a batch of versions, fetched in three queries."""

    metrics: dict[int, dict[str, float]]
    tags: dict[int, dict[str, str]]
    aliases: dict[int, list[str]]


async def extras(conn: aiosqlite.Connection, ids: Sequence[int]) -> Extras:
    out = Extras(metrics=defaultdict(dict), tags=defaultdict(dict), aliases=defaultdict(list))
    if not ids:
        return out
    marks = placeholders(ids)
    for row in await fetchall(
            conn, f"SELECT version_id, name, value FROM metrics WHERE version_id IN ({marks})",
            ids):
        out.metrics[row[0]][row[1]] = row[2]
    for row in await fetchall(
            conn, f"SELECT version_id, key, value FROM tags WHERE version_id IN ({marks})", ids):
        out.tags[row[0]][row[1]] = row[2]
    for row in await fetchall(
            conn, f"SELECT version_id, alias FROM aliases WHERE version_id IN ({marks}) "
            "ORDER BY alias", ids):
        out.aliases[row[0]].append(row[1])
    return out


def artifact(row: aiosqlite.Row, bucket: str) -> ArtifactInfo:
    return ArtifactInfo(bucket=bucket, object_name=row["object_name"], sha256=row["sha256"],
                        size_bytes=row["size_bytes"], format=ArtifactFormat(row["format"]))


def version_info(row: aiosqlite.Row, details: str, more: Extras, bucket: str) -> VersionInfo:
    d = _details_decoder.decode(details)
    vid = row["id"]
    spec = VersionSpec(
        format=ArtifactFormat(row["format"]), trained_at=from_epoch(row["trained_at"]),
        data_start=from_epoch(row["data_start"]), data_end=from_epoch(row["data_end"]),
        metrics=dict(more.metrics.get(vid, {})), features=d.features,
        hyperparameters=d.hyperparameters, tags=dict(more.tags.get(vid, {})),
        lineage=d.lineage, description=d.description,
    )
    return VersionInfo(
        model=row["model"], version=row["version"], created_at=at(row["created_at"]),
        created_by=row["created_by"], spec=spec, artifact=artifact(row, bucket),
        aliases=list(more.aliases.get(vid, [])), idempotency_key=row["idempotency_key"] or "",
    )


def version_summary(row: aiosqlite.Row, more: Extras) -> VersionSummary:
    vid = row["id"]
    return VersionSummary(
        model=row["model"], version=row["version"], created_at=at(row["created_at"]),
        created_by=row["created_by"], format=ArtifactFormat(row["format"]),
        trained_at=from_epoch(row["trained_at"]), data_start=from_epoch(row["data_start"]),
        data_end=from_epoch(row["data_end"]), metrics=dict(more.metrics.get(vid, {})),
        tags=dict(more.tags.get(vid, {})), sha256=row["sha256"], size_bytes=row["size_bytes"],
        aliases=list(more.aliases.get(vid, [])),
    )


def at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
