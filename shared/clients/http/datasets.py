"""``client.datasets``: OHLCV datasets (CSV or Parquet), content-addressed (``/v1/datasets``).

    info = client.datasets.upload("us-stocks", "prices.csv", progress=bar)   # validated
    print(info.valid, info.report.errors)
    client.datasets.download("us-stocks", "copy.csv")                       # SHA-256 checked
"""

from __future__ import annotations

from collections.abc import Generator
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
from shared.contracts import datasets as c

CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _path(ref: str, *rest: str) -> str:
    return "/".join([f"/v1/datasets/{quote(ref, safe=':')}", *rest])


def format_of(source: Source, fmt: c.DatasetFormat | None) -> c.DatasetFormat:
    """The given format, else the file's extension (``.parquet``/``.pq``), else CSV."""
    if fmt is not None:
        return fmt
    if isinstance(source, str | Path) and Path(source).suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "csv"


class Datasets(Resource[TT]):
    @op
    def page(self, *, prefix: str = "", limit: int = 100, cursor: str = ""
             ) -> Call[c.DatasetPage]:
        return Call("GET", "/v1/datasets", c.DatasetPage,
                    params={"prefix": prefix, "limit": limit, "cursor": cursor})

    @pages
    def iter(self, *, prefix: str = "") -> Paged[c.DatasetPage, c.DatasetSummary]:
        return Paged(lambda cursor: Datasets.page.plan(self, prefix=prefix, cursor=cursor),
                     lambda page: page.items)

    @op
    def get(self, ref: str) -> Call[c.DatasetInfo]:
        """A name or ``sha256:<hex>``: summary and validation report."""
        return Call("GET", _path(ref), c.DatasetInfo)

    @op
    def upload(self, name: str, source: Source, *, format: c.DatasetFormat | None = None,
               source_note: str = "", progress: Progress | None = None) -> Call[c.DatasetInfo]:
        """Upload a file (streamed) under ``name``; the registry validates it on arrival
        (``info.valid``, ``info.report``). The same bytes again give the same dataset."""
        fmt = format_of(source, format)
        return Call("PUT", _path(name), c.DatasetInfo, params={"format": fmt,
                                                               "source": source_note},
                    content=Upload(source, progress=progress),
                    headers={"Content-Type": CONTENT_TYPES[fmt]})

    @op
    def download(self, ref: str, dest: str | Path | IO[bytes], *,
                 progress: Progress | None = None) -> Generator[Download, Any, Downloaded]:
        done: Downloaded = yield Download(Call("GET", _path(ref, "file"), bytes), dest,
                                          progress)
        return done

    @op
    def seed_demo(self) -> Call[c.DatasetInfo]:
        """Register the bundled real prices (idempotent)."""
        return Call("POST", "/v1/datasets/_demo", c.DatasetInfo)
