"""HTTP routes of datasets, ``/v1/datasets/...``: each one call of the dataset client (the
registry serves ``registry.datasets.*``), plus streaming of file bytes in and out of the object
store.

``PUT /v1/datasets/{name}`` takes the raw CSV or Parquet bytes as the body (streamed, never
buffered) and answers the catalogue entry with its validation report: 201 for new bytes, 200
for bytes already known (the same dataset, now also under this name). ``POST
/v1/datasets/_demo`` registers the bundled real prices (names cannot start with ``_``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post, put
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from services.gateway.forward import bus_of, nats_headers
from services.gateway.routes.conventions import OPERATOR, VIEWER, Cursor, Limit
from shared.clients.datasets import DatasetClient
from shared.contracts import datasets as c
from shared.errors import PayloadTooLarge

TAGS = ["datasets"]
#: The route's own ceiling; the registry's limit (QUANTOPS_QUANT_MAX_DATASET_BYTES, sent in the
#: upload ticket) is the one enforced, before and while streaming.
UPLOAD_CEILING = 1 << 40
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet",
                 "application/parquet")

Name = Annotated[str, PathParameter(description="dataset name", max_length=128)]
Ref = Annotated[str, PathParameter(description="dataset name or sha256:<hex>", max_length=200)]
Prefix = Annotated[str, QueryParameter(max_length=128, description="name prefix")]
Format = Annotated[Literal["csv", "parquet"] | None, QueryParameter(
    description="file format (default: from Content-Type, else csv)")]
Source = Annotated[str, QueryParameter(max_length=512, description="where the data comes from")]


def client_of(request: Request[Any, Any, Any]) -> DatasetClient:
    return DatasetClient(bus_of(request), headers=nats_headers(request))


@get("/v1/datasets", opt=VIEWER, tags=TAGS, summary="Datasets by name, with summaries")
async def list_datasets(request: Request[Any, Any, Any], prefix: Prefix = "", limit: Limit = 100,
                        cursor: Cursor = "") -> c.DatasetPage:
    return await client_of(request).list(prefix=prefix, limit=limit, cursor=cursor)


@get("/v1/datasets/{ref:str}", opt=VIEWER, tags=TAGS,
     summary="One dataset: symbols, range, rows, frequency and its validation report")
async def get_dataset(request: Request[Any, Any, Any], ref: Ref) -> c.DatasetInfo:
    return await client_of(request).get(ref)


@get("/v1/datasets/{ref:str}/file", opt=VIEWER, tags=TAGS,
     summary="The file's bytes, streamed and checked against its SHA-256")
async def download(request: Request[Any, Any, Any], ref: Ref) -> Stream:
    info, chunks = await client_of(request).open(ref)
    digest = base64.b64encode(bytes.fromhex(info.sha256)).decode()
    media = "text/csv" if info.format == "csv" else PARQUET_TYPES[0]
    return Stream(chunks, media_type=media, headers={
        "Content-Length": str(info.size_bytes), "ETag": f'"{info.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": f'attachment; filename="{info.name or info.sha256}.{info.format}"'})


@put("/v1/datasets/{ref:str}", opt=OPERATOR, tags=TAGS, request_max_body_size=UPLOAD_CEILING,
     summary="Upload a CSV or Parquet file (streamed) under a name; validated on arrival "
             "(201 new bytes, 200 bytes already stored)")
async def upload(request: Request[Any, Any, Any], ref: Name, format: Format = None,
                 source: Source = "") -> Response[c.DatasetInfo]:
    client, name = client_of(request), ref
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt: c.DatasetFormat = format or ("parquet" if content_type in PARQUET_TYPES else "csv")
    length = request.content_length
    ticket = await client.begin(name, format=fmt, size_bytes=length, source=source)
    if length is not None and length > ticket.max_bytes:  # begin refuses it first; belt
        await client.abort(ticket.upload_id)
        raise PayloadTooLarge(f"dataset of {length} bytes exceeds {ticket.max_bytes} bytes")
    info = await client.put(ticket, _body(request))
    return Response(info, status_code=201 if info.created else 200)


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


@post("/v1/datasets/_demo", opt=OPERATOR, tags=TAGS, status_code=200,
      summary="Register the bundled real prices (AAPL, GOOG, IBM, MSFT daily; idempotent)")
async def seed_demo(request: Request[Any, Any, Any]) -> c.DatasetInfo:
    return await client_of(request).seed_demo()


ROUTES = [list_datasets, get_dataset, download, upload, seed_demo]
