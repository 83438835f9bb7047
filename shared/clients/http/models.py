"""``client.models``: the model registry (``/v1/models/...``).

    v = client.models.upload("alpha", "model.skops", spec=VersionSpec(metrics={"sharpe": 1.4}))
    client.models.promote("alpha", v.version, reason="beats production")
    client.models.download("alpha", "production", "alpha.skops", progress=bar)
    cmp = client.models.compare("alpha", ["production", "latest"])
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from shared.clients.http._calls import (
    TT,
    Call,
    Download,
    Downloaded,
    Paged,
    Progress,
    Resource,
    Source,
    Upload,
    op,
    pages,
)
from shared.clients.http._io import size_of
from shared.contracts import registry as c
from shared.errors import QuantopsError


def model_path(name: str, *parts: str | int) -> str:
    return "/".join([f"/v1/models/{quote(name, safe='')}",
                     *(quote(str(p), safe="") for p in parts)])


class Models(Resource[TT]):
    @op
    def page(self, *, prefix: str = "", limit: int = 100, cursor: str = "") -> Call[c.ModelPage]:
        """One page of models with version counts and aliases; ``iter`` follows the cursor."""
        return Call("GET", "/v1/models", c.ModelPage,
                    params={"prefix": prefix, "limit": limit, "cursor": cursor})

    @pages
    def iter(self, *, prefix: str = "") -> Paged[c.ModelPage, c.ModelSummary]:
        return Paged(lambda cursor: Models.page.plan(self, prefix=prefix, cursor=cursor),
                     lambda page: page.items)

    @op
    def versions(self, name: str, *, metrics: Sequence[str] = (),
                 tags: Mapping[str, str] | None = None,
                 trained_from: datetime | None = None, trained_to: datetime | None = None,
                 sort: str = "-version", limit: int = 50, cursor: str = ""
                 ) -> Call[c.VersionPage]:
        """One page of versions. ``metrics``: filters like ``"sharpe>1"``; ``sort``: a field
        or metric, ``-`` first for descending."""
        return Call("GET", model_path(name, "versions"), c.VersionPage, params={
            "metric": list(metrics), "tag": [f"{k}:{v}" for k, v in (tags or {}).items()],
            "trained_from": trained_from.isoformat() if trained_from else None,
            "trained_to": trained_to.isoformat() if trained_to else None,
            "sort": sort, "limit": limit, "cursor": cursor})

    @pages
    def iter_versions(self, name: str, *, metrics: Sequence[str] = (), sort: str = "-version"
                      ) -> Paged[c.VersionPage, c.VersionSummary]:
        return Paged(lambda cursor: Models.versions.plan(
            self, name, metrics=metrics, sort=sort, limit=100, cursor=cursor),
            lambda page: page.items)

    @op
    def get(self, name: str, ref: str | int = c.LATEST) -> Call[c.VersionInfo]:
        """One version's metadata; ``ref`` is a number, an alias or ``latest``."""
        return Call("GET", model_path(name, "versions", ref), c.VersionInfo)

    @op
    def download(self, name: str, ref: str | int, dest: str | Path | IO[bytes], *,
                 progress: Progress | None = None) -> Generator[Download, Any, Downloaded]:
        """Stream the artifact into ``dest``; its SHA-256 is checked against the registry's."""
        done: Downloaded = yield Download(
            Call("GET", model_path(name, "versions", ref, "artifact"), bytes), dest, progress)
        return done

    @op
    def upload(self, name: str, source: Source, *, spec: c.VersionSpec | None = None,
               idempotency_key: str = "", progress: Progress | None = None,
               ) -> Generator[Call[Any], Any, c.VersionInfo]:
        """Register a version: metadata first, then the bytes, streamed (never held whole in
        memory). With an ``idempotency_key`` that already registered one, that version."""
        size = size_of(source)
        ticket: c.UploadTicket = yield Call(
            "POST", model_path(name, "uploads"), c.UploadTicket,
            json={"spec": spec or c.VersionSpec(), "size_bytes": size,
                  "idempotency_key": idempotency_key})
        if ticket.existing is not None:
            return ticket.existing
        try:
            info: c.VersionInfo = yield Call(
                "PUT", model_path(name, "uploads", ticket.upload_id), c.VersionInfo,
                content=Upload(source, size, progress))
        except QuantopsError:
            yield Call("DELETE", model_path(name, "uploads", ticket.upload_id), None,
                       ok=frozenset({404}))
            raise
        return info

    @op
    def delete(self, name: str, ref: str | int, *, reason: str = "") -> Call[c.DeleteReply]:
        return Call("DELETE", model_path(name, "versions", ref), c.DeleteReply,
                    params={"reason": reason})

    @op
    def compare(self, name: str, refs: Sequence[str | int]) -> Call[c.Comparison]:
        """Metric by metric, with deltas against the first ref and a winner per metric."""
        return Call("GET", model_path(name, "compare"), c.Comparison,
                    params={"versions": [str(r) for r in refs]})

    @op
    def aliases(self, name: str) -> Call[c.AliasList]:
        return Call("GET", model_path(name, "aliases"), c.AliasList)

    @op
    def set_alias(self, name: str, alias: str, version: int | str, *, reason: str = ""
                  ) -> Call[c.AliasChange]:
        return Call("PUT", model_path(name, "aliases", alias), c.AliasChange,
                    json={"version": version, "reason": reason})

    @op
    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> Call[c.AliasChange]:
        return Call("DELETE", model_path(name, "aliases", alias), c.AliasChange,
                    params={"reason": reason})

    @op
    def promote(self, name: str, version: int | str, *, reason: str = ""
                ) -> Call[c.AliasChange]:
        """Move ``production`` to ``version`` (recorded in the audit log with the caller)."""
        return Call("POST", model_path(name, "promote"), c.AliasChange,
                    json={"version": version, "reason": reason})

    @op
    def rollback(self, name: str, *, alias: str = c.PRODUCTION, reason: str = ""
                 ) -> Call[c.AliasChange]:
        """Move ``alias`` back to where it pointed before its last move."""
        return Call("POST", model_path(name, "rollback"), c.AliasChange,
                    json={"alias": alias, "reason": reason})

    @op
    def cleanup(self, name: str, *, keep: int | None = None, dry_run: bool = False,
                reason: str = "") -> Call[c.CleanupReply]:
        return Call("POST", model_path(name, "cleanup"), c.CleanupReply,
                    json={"keep": keep, "dry_run": dry_run, "reason": reason})

    @op
    def audit(self, name: str, *, limit: int = 100, cursor: str = "") -> Call[c.AuditPage]:
        return Call("GET", model_path(name, "audit"), c.AuditPage,
                    params={"limit": limit, "cursor": cursor})

    @pages
    def iter_audit(self, name: str) -> Paged[c.AuditPage, c.AuditEntry]:
        return Paged(lambda cursor: Models.audit.plan(self, name, cursor=cursor),
                     lambda page: page.items)


__all__ = ["Downloaded", "Models"]
