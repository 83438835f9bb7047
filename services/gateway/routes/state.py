"""HTTP routes of the state resource family: ``/v1/state/...`` over the ``state.*`` subjects.

Keys: ``GET|PUT|DELETE /v1/state/{namespace}/{key}`` (the key may contain ``/`` and ``.``).
The revision is the ``ETag``; ``If-Match: "<rev>"`` makes a write or delete compare-and-set,
``If-None-Match: *`` a create, and a mismatch answers 412 with the current revision in
``details``. ``GET`` honours ``If-None-Match: "<rev>"`` with 304. ``Idempotency-Key`` on a write
makes a retry after a timeout apply once (``PutRequest.request_id``).

Everything else sits under names a namespace cannot take (they start with ``_``):
``_history``, ``_watch`` (Server-Sent Events), ``_namespaces``, ``_cleanup``, ``_snapshots``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar, cast

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import HTTPScope, Send

from services.gateway import lean
from services.gateway.documented import problem
from services.gateway.forward import bus_of, call, call_raw, forward, headers_for, nats_headers
from services.gateway.routes.conventions import ADMIN, OPERATOR, STREAM, VIEWER, Cursor, Limit
from services.gateway.streams import limited
from shared.bus import Bus
from shared.clients.state import StateClient, check_namespace
from shared.contracts.base import Empty
from shared.contracts.bounds import MAX_SAFE_INT, FloatSeconds, Name, SchemaVersion, Seconds
from shared.contracts.state import (
    CleanupRequest,
    ConfigureRequest,
    DeleteReply,
    DeleteRequest,
    GetReply,
    GetRequest,
    HistoryRequest,
    ListRequest,
    NamespaceConfig,
    NamespacesRequest,
    PutReply,
    PutRequest,
    RestoreRequest,
    SnapshotRequest,
)
from shared.errors import InvalidRequest
from shared.subjects import StateSubject

Req = Request[Any, Any, Any]
TAGS = ["state"]
JSON = "application/json"
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
#: A comment line this often keeps an idle SSE stream open through proxies.
SSE_KEEPALIVE_S = 15.0
_encoder = msgspec.json.Encoder()


class _Revision(msgspec.Struct):
    revision: int


_revision_of = msgspec.json.Decoder(_Revision).decode
_PRECONDITION = problem("If-Match / If-None-Match failed: details name the current revision")
#: A value travels in one NATS message (the server's max_payload, 8 MiB in every deployment).
VALUE_BODY_BYTES = 8 * 1024 * 1024

Namespace = Annotated[str, PathParameter(description="namespace")]
Key = Annotated[str, PathParameter(description="key (may contain / and .)")]
SnapshotName = Annotated[str, PathParameter(description="snapshot file name")]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", required=False)]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", required=False)]
IdempotencyKey = Annotated[str, HeaderParameter(
    name="Idempotency-Key", required=False, max_length=128, pattern=r"^[A-Za-z0-9_.:-]*\Z",
    description="repeat it on a retry: a write with the same key within two minutes is "
                "applied once and answered with the first one's revision")]
Revision = Annotated[int | None, QueryParameter(ge=1, le=MAX_SAFE_INT,
                                                description="a past revision")]
MinRevision = Annotated[int | None, QueryParameter(
    ge=0, le=MAX_SAFE_INT, description="highest revision you have seen: a replica's cache may "
    "answer")]
Prefix = Annotated[str, QueryParameter(max_length=512, description="key prefix")]


class PutBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``value``: any JSON document. ``ttl_s``: the key expires after it. ``schema_version``:
    the version the document is written in (default: the namespace's)."""

    value: Any
    ttl_s: Seconds | None = None
    schema_version: SchemaVersion | None = None


class SnapshotUploaded(msgspec.Struct, frozen=True, kw_only=True):
    name: str


class CleanupBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    older_than_s: FloatSeconds
    dry_run: bool = False


class SnapshotBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    namespace: Name = ""


def _revision(header: str | None, name: str) -> int | None:
    if header is None:
        return None
    match = _ETAG.match(header)
    if match is None or len(match[1]) > 16 or int(match[1]) > MAX_SAFE_INT:
        # An unchecked 2**64 wrapped to "no precondition" inside JetStream: a CAS that did
        # not compare. Revisions are stream sequences, far below 2**53.
        raise InvalidRequest(f'{name} must be one ETag ("<revision>", at most {MAX_SAFE_INT})',
                             details={"header": name, "value": header[:100]})
    return int(match[1])


def _etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


T = TypeVar("T")


def _json(body: T, status: int = 200, headers: dict[str, str] | None = None
          ) -> Response[T]:
    # Encoded here by msgspec; the type parameter is what the OpenAPI schema documents.
    return cast("Response[T]", Response(_encoder.encode(body), status_code=status,
                                        media_type=JSON, headers=headers))


def _read(data: bytes, if_none_match: str | None) -> tuple[int, bytes, int]:
    """A read's answer from the service's ``GetReply``: status, body and revision (the ETag;
    304 and no body when the caller's ``If-None-Match`` names the current revision)."""
    current = _revision_of(data).revision
    cached = if_none_match is not None and if_none_match.strip() not in ("*", "")
    if cached and _revision(if_none_match, "If-None-Match") == current:
        return 304, b"", current
    return 200, data, current


async def _get_request(scope: HTTPScope, send: Send) -> bool:
    """``GET /v1/state/{namespace}/{key}`` without a query: the lean version (``lean``)."""
    if scope["method"] != "GET" or scope["query_string"]:
        return False
    try:
        if_none_match = lean.header(scope, b"if-none-match")
    except lean.Repeated:
        return False
    params = scope["path_params"]
    bus: Bus = scope["app"].state.bus
    data, _ = await bus.request_raw(StateSubject.GET, _encoder.encode(GetRequest(
        namespace=params["namespace"], key=params["key"].lstrip("/"))),
        headers=headers_for(scope, bus))
    status, body, current = _read(
        data, None if if_none_match is None else if_none_match.decode("latin-1"))
    for message in lean.json_response(status, body, [(b"etag", b'"%d"' % current)]):
        await send(message)  # type: ignore[arg-type]
    return True


@get("/v1/state/{namespace:str}/{key:path}", opt={**VIEWER, lean.LEAN: _get_request},
     tags=TAGS, responses={304: ResponseSpec(None, description="Not modified (If-None-Match)")},
     summary="Read a key (latest, or ?revision=)")
async def get_value(request: Req, namespace: Namespace, key: Key,
                    if_none_match: IfNoneMatch = None, revision: Revision = None,
                    min_revision: MinRevision = None) -> Response[GetReply]:
    # The service's GetReply is the HTTP body as it is: only its revision is read (ETag).
    data = await call_raw(request, StateSubject.GET, GetRequest(
        namespace=namespace, key=key.lstrip("/"), revision=revision,
        min_revision=min_revision))
    status, body, current = _read(data, if_none_match)
    if status == 304:
        return cast("Response[GetReply]", Response(b"", status_code=304, headers=_etag(current)))
    return cast("Response[GetReply]", Response(body, media_type=JSON, headers=_etag(current)))


@put("/v1/state/{namespace:str}/{key:path}", opt=OPERATOR, tags=TAGS,
     request_max_body_size=VALUE_BODY_BYTES, responses={
         201: ResponseSpec(PutReply, description="Created (If-None-Match: *)",
                           generate_examples=False), 412: _PRECONDITION},
     summary="Write a key (If-Match: compare-and-set; If-None-Match: * create)")
async def put_value(request: Req, namespace: Namespace, key: Key, data: JSONBody[PutBody],
                    if_match: IfMatch = None, if_none_match: IfNoneMatch = None,
                    idempotency_key: IdempotencyKey = "") -> Response[PutReply]:
    expected = _revision(if_match, "If-Match")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise InvalidRequest("a write accepts only If-None-Match: *",
                                 details={"header": "If-None-Match"})
        expected = 0
    reply = await call(request, StateSubject.PUT, PutRequest(
        namespace=namespace, key=key.lstrip("/"), value=msgspec.Raw(_encoder.encode(data.value)),
        expected_revision=expected, ttl_s=data.ttl_s, schema_version=data.schema_version,
        request_id=idempotency_key), PutReply)
    return _json(reply, status=201 if expected == 0 else 200, headers=_etag(reply.revision))


@delete("/v1/state/{namespace:str}/{key:path}", opt=OPERATOR, tags=TAGS,
        responses={412: _PRECONDITION},
        status_code=200, summary="Delete a key (a tombstone in its history)")
async def delete_value(request: Req, namespace: Namespace, key: Key,
                       if_match: IfMatch = None, idempotency_key: IdempotencyKey = ""
                       ) -> Response[DeleteReply]:
    reply = await call(request, StateSubject.DELETE, DeleteRequest(
        namespace=namespace, key=key.lstrip("/"),
        expected_revision=_revision(if_match, "If-Match"), request_id=idempotency_key),
        DeleteReply)
    return _json(reply, headers=_etag(reply.revision))


@get("/v1/state/{namespace:str}", opt=VIEWER, tags=TAGS,
     summary="List keys (?prefix=, ?limit=, ?cursor=)")
async def list_keys(request: Req, namespace: Namespace, prefix: Prefix = "",
                    limit: Limit = 100, cursor: Cursor = "", min_revision: MinRevision = None
                    ) -> Response[Any]:
    return await forward(request, StateSubject.LIST, ListRequest(
        namespace=namespace, prefix=prefix, limit=limit, cursor=cursor,
        min_revision=min_revision))


@get("/v1/state/_history/{namespace:str}/{key:path}", opt=VIEWER, tags=TAGS,
     summary="Last revisions of a key, newest first")
async def history(request: Req, namespace: Namespace, key: Key,
                  limit: Annotated[int, QueryParameter(ge=1, le=64)] = 10) -> Response[Any]:
    return await forward(request, StateSubject.HISTORY, HistoryRequest(
        namespace=namespace, key=key.lstrip("/"), limit=limit))


@get("/v1/state/_watch/{namespace:str}", opt=STREAM, tags=TAGS,
     summary="Server-Sent Events: changes of a namespace (?prefix=)")
async def watch(request: Req, namespace: Namespace, prefix: Prefix = ""
                ) -> ServerSentEvent:
    check_namespace(namespace)  # now: once the stream has started, a 400 cannot be sent
    settings = request.app.state.settings.gateway
    changes = StateClient(bus_of(request)).watch(
        namespace, prefix=prefix, idle_s=SSE_KEEPALIVE_S,
        max_buffer_bytes=settings.stream_buffer_bytes)

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        # Named events ("ready", "ping") reach only listeners of those names, never a plain
        # onmessage (a comment would: Litestar adds an empty data line to it).
        live = False
        try:
            async for change in changes:
                if change is None:  # the first once subscribed: "ready"; later ones: idle
                    yield ServerSentEventMessage(event="ping" if live else "ready",
                                                 data="" if live else namespace)
                    live = True
                    continue
                yield ServerSentEventMessage(data=_encoder.encode(change).decode(),
                                             event=change.operation, id=str(change.revision))
        finally:
            await changes.aclose()

    return ServerSentEvent(await limited(request, events()))


@get("/v1/state/_namespaces", opt=VIEWER, tags=TAGS,
     summary="Every namespace with its configuration and usage")
async def namespaces(request: Req) -> Response[Any]:
    return await forward(request, StateSubject.NAMESPACES, NamespacesRequest())


@get("/v1/state/_namespaces/{namespace:str}", opt=VIEWER, tags=TAGS,
     summary="One namespace's configuration and usage")
async def namespace_info(request: Req, namespace: Namespace) -> Response[Any]:
    return await forward(request, StateSubject.NAMESPACES,
                         NamespacesRequest(namespace=namespace))


@put("/v1/state/_namespaces/{namespace:str}", opt=ADMIN, tags=TAGS,
     summary="Declare a namespace's schema version and limits")
async def configure(request: Req, namespace: Namespace, data: JSONBody[NamespaceConfig]
                    ) -> Response[Any]:
    return await forward(request, StateSubject.CONFIGURE,
                         ConfigureRequest(namespace=namespace, config=data))


@post("/v1/state/_cleanup/{namespace:str}", opt=ADMIN, tags=TAGS, status_code=200,
      summary="Delete keys not written for older_than_s seconds")
async def cleanup(request: Req, namespace: Namespace, data: JSONBody[CleanupBody]
                  ) -> Response[Any]:
    return await forward(request, StateSubject.CLEANUP, CleanupRequest(
        namespace=namespace, older_than_s=data.older_than_s, dry_run=data.dry_run),
        timeout_s=60.0)


@get("/v1/state/_snapshots", opt=VIEWER, tags=TAGS, summary="List snapshots")
async def snapshots(request: Req) -> Response[Any]:
    return await forward(request, StateSubject.SNAPSHOTS, Empty())


@post("/v1/state/_snapshots", opt=ADMIN, tags=TAGS, status_code=201,
      summary="Snapshot a namespace (or all) into one checksummed file")
async def create_snapshot(request: Req, data: JSONBody[SnapshotBody]
                          ) -> Response[Any]:
    return await forward(request, StateSubject.SNAPSHOT,
                         SnapshotRequest(namespace=data.namespace), status_code=201,
                         timeout_s=120.0)


@get("/v1/state/_snapshots/{name:str}", opt=ADMIN, tags=TAGS,
     summary="Download a snapshot file")
async def download_snapshot(request: Req, name: SnapshotName) -> Response[bytes]:
    data = await StateClient(bus_of(request)).download_snapshot(name)
    return Response(data, media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@put("/v1/state/_snapshots/{name:str}", opt={**ADMIN, "body": "upload"}, tags=TAGS,
     status_code=201,
     summary="Upload a snapshot file (checked when restored)")
async def upload_snapshot(request: Req, name: SnapshotName) -> Response[SnapshotUploaded]:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
        raise InvalidRequest(f"invalid snapshot name {name[:80]!r}", details={"field": "name"})
    client = StateClient(bus_of(request), headers=nats_headers(request))
    await client.upload_snapshot(name, await request.body())
    return _json(SnapshotUploaded(name=name), status=201)


@post("/v1/state/_snapshots/{name:str}/restore", opt=ADMIN, tags=TAGS,
      status_code=200, summary="Restore a snapshot (all or one namespace); never half-applies")
async def restore(request: Req, name: SnapshotName,
                  data: JSONBody[SnapshotBody | None] = None) -> Response[Any]:
    namespace = data.namespace if data else ""
    return await forward(request, StateSubject.RESTORE,
                         RestoreRequest(name=name, namespace=namespace), timeout_s=300.0)


ROUTES = [get_value, put_value, delete_value, list_keys, history, watch, namespaces,
          namespace_info, configure, cleanup, snapshots, create_snapshot, download_snapshot,
          upload_snapshot, restore]
