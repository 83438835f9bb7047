"""Typed async client of datasets (served by the registry), over a ``shared.bus.Bus``.

    datasets = DatasetClient(bus)
    info = await datasets.upload("my-prices", Path("prices.csv"))      # or bytes, or a stream
    info.valid, info.report.errors                                     # checked on arrival
    info, data = await datasets.download("demo-us-stocks")             # SHA-256 verified

Bytes always travel through the JetStream object store (bucket ``quantops_datasets``), never in
a request, so a dataset's size does not depend on the server's max_payload.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from pathlib import Path

from shared.clients.base import ServiceClient
from shared.clients.registry_objects import Source, open_object
from shared.clients.staging import stage_object
from shared.contracts import datasets as c
from shared.contracts.base import Empty
from shared.logs import swallowed
from shared.subjects import DatasetSubject as S

log = logging.getLogger(__name__)

#: Commit parses and validates the whole file: give it more than a plain request.
COMMIT_TIMEOUT_S = 120.0


class DatasetClient(ServiceClient):
    """Datasets, as methods.

    Args:
        bus: the caller's NATS connection.
        principal: who the registry records as the uploader (``Quantops-Principal``).
        headers: extra NATS headers for every request (the gateway passes its own).
        timeout_s: per request; defaults to the bus's.
    """

    async def begin(self, name: str, *, format: c.DatasetFormat = "csv",
                    size_bytes: int | None = None, source: str = "") -> c.DatasetTicket:
        return await self._call(S.BEGIN, c.BeginDatasetUpload(
            name=name, format=format, size_bytes=size_bytes, source=source), c.DatasetTicket)

    async def upload(self, name: str, data: Source, *, format: c.DatasetFormat | None = None,
                     size_bytes: int | None = None, source: str = "") -> c.DatasetInfo:
        """Store a file under ``name``; the format defaults from a path's suffix, else CSV."""
        if format is None:
            format = "parquet" if isinstance(data, Path) and data.suffix == ".parquet" else "csv"
        if size_bytes is None and isinstance(data, bytes | bytearray | memoryview):
            size_bytes = len(data)
        ticket = await self.begin(name, format=format, size_bytes=size_bytes, source=source)
        return await self.put(ticket, data)

    async def put(self, ticket: c.DatasetTicket, data: Source) -> c.DatasetInfo:
        """Write the bytes for ``ticket`` and commit; a failed write aborts the upload."""
        try:
            written = await stage_object(self.bus.js, self.bus.nc, ticket.staging_subject,
                                         data, chunk_bytes=ticket.chunk_bytes,
                                         max_bytes=ticket.max_bytes)
        except BaseException:
            with swallowed(log, "aborting the dataset upload"):
                await self.abort(ticket.upload_id)
            raise
        return await self._call(S.COMMIT, c.CommitDatasetUpload(
            upload_id=ticket.upload_id, sha256=written.sha256, size_bytes=written.size_bytes),
            c.DatasetInfo, timeout_s=COMMIT_TIMEOUT_S)

    async def abort(self, upload_id: str) -> None:
        await self._call(S.ABORT, c.DatasetUploadRequest(upload_id=upload_id), Empty)

    async def seed_demo(self, name: str = c.DEMO_DATASET) -> c.DatasetInfo:
        return await self._call(S.SEED_DEMO, c.SeedDemo(name=name), c.DatasetInfo,
                                timeout_s=COMMIT_TIMEOUT_S)

    async def get(self, ref: str) -> c.DatasetInfo:
        """A name or ``sha256:<hex>``."""
        return await self._call(S.GET, c.DatasetRequest(ref=ref), c.DatasetInfo)

    async def list(self, *, prefix: str = "", limit: int = 100, cursor: str = ""
                   ) -> c.DatasetPage:
        return await self._call(S.LIST, c.ListDatasets(prefix=prefix, limit=limit,
                                                       cursor=cursor), c.DatasetPage)

    async def open(self, ref: str) -> tuple[c.DatasetInfo, AsyncGenerator[bytes, None]]:
        """The dataset and its bytes as chunks, the last one only once the SHA-256 holds."""
        info = await self.get(ref)
        return info, await open_object(self.bus.js, info.bucket, info.object_name,
                                       sha256=info.sha256, size_bytes=info.size_bytes)

    async def download(self, ref: str) -> tuple[c.DatasetInfo, bytes]:
        info, chunks = await self.open(ref)
        async with contextlib.aclosing(chunks):
            return info, b"".join([chunk async for chunk in chunks])
