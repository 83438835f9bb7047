"""HTTP routes of the model registry, ``/v1/models/...``: each one NATS call (through the typed
registry client), plus streaming of artifact bytes in and out of the object store.

Uploading is two calls, like the NATS flow: ``POST .../uploads`` with the metadata answers an
upload id, ``PUT .../uploads/{id}`` with the raw bytes (streamed, never buffered) commits the
version. Downloads stream from the object store; the SHA-256 recorded at registration is
checked before the last chunk is sent, so a corrupted artifact never arrives complete.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from services.gateway.forward import bus_of, nats_headers
from services.gateway.routes.conventions import ADMIN, OPERATOR, VIEWER, Cursor, QueryLimit
from shared.clients.registry import RegistryClient
from shared.contracts import bounds
from shared.contracts import registry as c
from shared.errors import InvalidRequest, NotFound, PayloadTooLarge

TAGS = ["models"]
JSON_BODY = 1024 * 1024  # metadata bodies; features lists can be long
#: The route's own ceiling; the registry's limit (QUANTOPS_REGISTRY_MAX_ARTIFACT_BYTES, sent in
#: each upload ticket) is the one enforced, before and while streaming.
UPLOAD_CEILING = 1 << 40
EXTENSIONS = {"skops": "skops", "onnx": "onnx", "json": "json", "binary": "bin",
              "pickle": "pkl", "joblib": "joblib"}

Name = Annotated[str, PathParameter(description="model name")]
Ref = Annotated[str, PathParameter(description="version number, alias or 'latest'")]
Reason = Annotated[str, QueryParameter(max_length=1024, description="why (audit log)")]
Text = Annotated[str, QueryParameter(max_length=256)]
Texts = Annotated[list[str] | None, QueryParameter()]
When = Annotated[datetime | None, QueryParameter()]
Alias = Annotated[str, PathParameter(description="alias name")]
UploadId = Annotated[str, PathParameter(description="upload_id of the ticket")]


class UploadBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    spec: c.VersionSpec = msgspec.field(default_factory=c.VersionSpec)
    size_bytes: bounds.Count | None = None
    idempotency_key: bounds.Name = ""


class AliasBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: c.VersionNumber | bounds.Name
    reason: bounds.Text = ""


class RollbackBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    alias: bounds.Name = c.PRODUCTION
    reason: bounds.Text = ""


class CleanupBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    keep: Annotated[int, msgspec.Meta(ge=0, le=bounds.MAX_ITEMS)] | None = None
    dry_run: bool = False
    reason: bounds.Text = ""


def client_of(request: Request[Any, Any, Any]) -> RegistryClient:
    """The registry client acting for this HTTP caller (principal and correlation id)."""
    return RegistryClient(bus_of(request), headers=nats_headers(request))


@get("/v1/models", opt=VIEWER, tags=TAGS, summary="Models, with version counts and aliases")
async def list_models(request: Request[Any, Any, Any], prefix: Text = "", limit: QueryLimit = 100,
                      cursor: Cursor = "") -> c.ModelPage:
    return await client_of(request).list_models(prefix=prefix, limit=limit, cursor=cursor)


@get("/v1/models/{name:str}/versions", opt=VIEWER, tags=TAGS,
     summary="Versions, filtered (metric=rmse<0.01, tag=key:value) and sorted (sort=-sharpe)")
async def list_versions(
    request: Request[Any, Any, Any], name: Name, metric: Texts = None, tag: Texts = None,
    trained_from: When = None, trained_to: When = None, data_from: When = None,
    data_to: When = None, sort: Text = "-version", limit: QueryLimit = 50, cursor: Cursor = "",
) -> c.VersionPage:
    try:
        filters = [c.MetricFilter.parse(m) for m in metric or []]
    except ValueError as e:
        raise InvalidRequest(str(e), details={"field": "metric"}) from e
    tags = dict(t.partition(":")[::2] for t in tag or [])
    return await client_of(request).list_versions(
        name, metrics=filters, tags=tags, trained_from=trained_from, trained_to=trained_to,
        data_from=data_from, data_to=data_to, sort=sort, limit=limit, cursor=cursor)


@get("/v1/models/{name:str}/versions/{ref:str}", opt=VIEWER, tags=TAGS,
     summary="One version's full metadata")
async def get_version(request: Request[Any, Any, Any], name: Name,
                      ref: Ref) -> c.VersionInfo:
    return await client_of(request).get(f"{name}@{ref}")


@get("/v1/models/{name:str}/versions/{ref:str}/artifact", opt=VIEWER, tags=TAGS,
     summary="The artifact's bytes, streamed and checked against the registered SHA-256")
async def download(request: Request[Any, Any, Any], name: Name,
                   ref: Ref) -> Stream:
    info, chunks = await client_of(request).open_artifact(f"{name}@{ref}")
    a = info.artifact
    digest = base64.b64encode(bytes.fromhex(a.sha256)).decode()
    filename = f"{info.model}-{info.version}.{EXTENSIONS.get(a.format.value, 'bin')}"
    return Stream(chunks, media_type="application/octet-stream", headers={
        "Content-Length": str(a.size_bytes), "ETag": f'"{a.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:", "X-Model-Version": info.ref,
        "Content-Disposition": f'attachment; filename="{filename}"'})


@post("/v1/models/{name:str}/uploads", opt=OPERATOR, tags=TAGS, request_max_body_size=JSON_BODY,
      summary="Begin registering a version: metadata in, upload id out (200 with the version "
              "when the idempotency key already registered one)")
async def begin_upload(request: Request[Any, Any, Any], name: Name,
                       data: JSONBody[UploadBody]) -> Response[c.UploadTicket]:
    ticket = await client_of(request).begin_upload(
        name, data.spec, size_bytes=data.size_bytes, idempotency_key=data.idempotency_key)
    return Response(ticket, status_code=200 if ticket.existing else 201)


@put("/v1/models/{name:str}/uploads/{upload_id:str}", opt=OPERATOR, tags=TAGS,
     request_max_body_size=UPLOAD_CEILING, status_code=201,
     summary="Upload the artifact's bytes (streamed) and commit the version")
async def upload(request: Request[Any, Any, Any], name: Name,
                 upload_id: UploadId) -> c.VersionInfo:
    client = client_of(request)
    ticket = await client.upload_ticket(upload_id)
    if ticket.model != name:
        raise NotFound(f"no upload {upload_id} for model {name!r}")
    length = request.content_length
    if length is not None and length > ticket.max_bytes:
        await client.abort_upload(upload_id)
        raise PayloadTooLarge(f"artifact of {length} bytes exceeds the limit of "
                              f"{ticket.max_bytes} bytes",
                              details={"max_bytes": ticket.max_bytes, "size_bytes": length})
    return await client.upload(ticket, _body(request))


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


@delete("/v1/models/{name:str}/uploads/{upload_id:str}", opt=OPERATOR, tags=TAGS,
        summary="Abandon an upload")
async def abort_upload(request: Request[Any, Any, Any], name: Name,
                       upload_id: UploadId) -> None:
    await client_of(request).abort_upload(upload_id)


@delete("/v1/models/{name:str}/versions/{ref:str}", opt=ADMIN, tags=TAGS, status_code=200,
        summary="Delete a version (refused while an alias points to it)")
async def delete_version(request: Request[Any, Any, Any], name: Name,
                         ref: Ref, reason: Reason = "") -> c.DeleteReply:
    return await client_of(request).delete(f"{name}@{ref}", reason=reason)


@get("/v1/models/{name:str}/compare", opt=VIEWER, tags=TAGS,
     summary="Compare versions metric by metric (versions=3&versions=production)")
async def compare(request: Request[Any, Any, Any], name: Name,
                  versions: Annotated[list[str], QueryParameter()]) -> c.Comparison:
    refs = [f"{name}@{v}" for item in versions for v in item.split(",") if v]
    return await client_of(request).compare(*refs)


@get("/v1/models/{name:str}/aliases", opt=VIEWER, tags=TAGS, summary="Aliases -> versions")
async def list_aliases(request: Request[Any, Any, Any], name: Name) -> c.AliasList:
    return c.AliasList(model=name, aliases=await client_of(request).aliases(name))


@put("/v1/models/{name:str}/aliases/{alias:str}", opt=ADMIN, tags=TAGS,
     request_max_body_size=JSON_BODY, summary="Point an alias at a version")
async def set_alias(request: Request[Any, Any, Any], name: Name,
                    alias: Alias, data: JSONBody[AliasBody]) -> c.AliasChange:
    return await client_of(request).set_alias(name, alias, data.version, reason=data.reason)


@delete("/v1/models/{name:str}/aliases/{alias:str}", opt=ADMIN, tags=TAGS, status_code=200,
        summary="Remove an alias")
async def delete_alias(request: Request[Any, Any, Any], name: Name,
                       alias: Alias, reason: Reason = ""
                       ) -> c.AliasChange:
    return await client_of(request).delete_alias(name, alias, reason=reason)


@post("/v1/models/{name:str}/promote", opt=ADMIN, tags=TAGS, status_code=200,
      request_max_body_size=JSON_BODY, summary="Move 'production' to a version")
async def promote(request: Request[Any, Any, Any], name: Name,
                  data: JSONBody[AliasBody]) -> c.AliasChange:
    return await client_of(request).promote(name, data.version, reason=data.reason)


@post("/v1/models/{name:str}/rollback", opt=ADMIN, tags=TAGS, status_code=200,
      request_max_body_size=JSON_BODY,
      summary="Move an alias (default 'production') back to where it pointed before")
async def rollback(request: Request[Any, Any, Any], name: Name,
                   data: JSONBody[RollbackBody]) -> c.AliasChange:
    return await client_of(request).rollback(name, alias=data.alias, reason=data.reason)


@post("/v1/models/{name:str}/cleanup", opt=ADMIN, tags=TAGS, status_code=200,
      request_max_body_size=JSON_BODY,
      summary="Keep the N newest versions (and every aliased one); delete the rest")
async def cleanup(request: Request[Any, Any, Any], name: Name,
                  data: JSONBody[CleanupBody]) -> c.CleanupReply:
    return await client_of(request).cleanup(name, keep=data.keep, dry_run=data.dry_run,
                                            reason=data.reason)


@get("/v1/models/{name:str}/audit", opt=VIEWER, tags=TAGS,
     summary="Audit log of the model: who moved what, when, from, to, why")
async def audit(request: Request[Any, Any, Any], name: Name, limit: QueryLimit = 100,
                cursor: Cursor = "") -> c.AuditPage:
    return await client_of(request).audit(name, limit=limit, cursor=cursor)


ROUTES = [list_models, list_versions, get_version, download, begin_upload, upload, abort_upload,
          delete_version, compare, list_aliases, set_alias, delete_alias, promote, rollback,
          cleanup, audit]
