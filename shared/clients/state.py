"""Typed async client of the state service, over a ``shared.bus.Bus``.

    state = StateClient(bus)
    put = await state.put("positions", "AAPL", {"qty": 10})
    entry = await state.get("positions", "AAPL")              # entry.value == {"qty": 10}
    await state.put("positions", "AAPL", {"qty": 11}, expected_revision=entry.revision)
    await state.update("positions", "AAPL", lambda v: {**v, "qty": v["qty"] + 1})
    async for change in state.watch("positions", prefix="AA"):
        ...

Consistency: the client remembers the highest revision it has seen (``seen_revision``: every
write's, every read's, every conflict's) and sends it as ``min_revision``, so any replica may
answer from its cache once it has applied that revision: a client always reads its own writes
and never reads backwards. ``strong=True`` reads from JetStream itself instead (every write
acknowledged to anyone before the read is seen). Writes carry the revision of the last
configuration change the client made (``config_revision``), so a replica checks them against
that configuration or a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import ObjectNotFoundError

from shared.bus import Bus, flush
from shared.bytequeue import ByteQueue
from shared.clients.staging import stage_object
from shared.contracts.base import Empty
from shared.contracts.state import (
    NULL,
    TOMBSTONES,
    ChangeEvent,
    CleanupReply,
    CleanupRequest,
    ConfigureRequest,
    DeleteReply,
    DeleteRequest,
    GetReply,
    GetRequest,
    HistoryReply,
    HistoryRequest,
    ImportSnapshot,
    KeyInfo,
    ListReply,
    ListRequest,
    NamespaceConfig,
    NamespaceInfo,
    NamespacesReply,
    NamespacesRequest,
    PutReply,
    PutRequest,
    RestoreReply,
    RestoreRequest,
    SnapshotInfo,
    SnapshotRequest,
    SnapshotsReply,
    StoredHeader,
    decode_stored,
)
from shared.errors import InvalidRequest, NotFound, RevisionConflict, ServiceUnavailable
from shared.logs import swallowed
from shared.subjects import STATE_CHANGES_PREFIX, Bucket, StateSubject, staging_subject

log = logging.getLogger(__name__)

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
# The state service's rule for namespaces: one subject token, no wildcards.
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Entry:
    """A value as read: the decoded document and where it stands."""

    namespace: str
    key: str
    revision: int
    value: Any
    schema_version: int
    updated_at: float
    expires_at: float | None


def changes_subject(namespace: str) -> str:
    """The watch feed of one namespace (``state.changes.<namespace>.>``)."""
    return f"{STATE_CHANGES_PREFIX}.{namespace}.>"


#: Chunk size of a staged snapshot upload (capped by the server's max_payload).
SNAPSHOT_CHUNK_BYTES = 1024 * 1024
#: What a watcher may fall behind by before the oldest changes are dropped.
WATCH_BUFFER_BYTES = 4 * 1024 * 1024


class StateClient:
    """Args:
    bus: the caller's connection.
    timeout_s: per request (default: the bus's).
    headers: NATS headers of every request: the caller's bus token (``Context``'s
        ``outgoing_headers``, a task's ``ctx.headers()``); none: the service's own, read only.
    """

    def __init__(self, bus: Bus, *, timeout_s: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.seen_revision = 0
        # The last configuration change (configure, restore) this client made: its writes
        # must be checked against that configuration or a newer one.
        self.config_revision = 0

    def _saw(self, revision: int) -> None:
        if revision > self.seen_revision:
            self.seen_revision = revision

    async def _call(self, subject: StateSubject, body: Any, reply: type[T]) -> T:
        try:
            return await self.bus.request(subject, body, reply, timeout_s=self.timeout_s,
                                          headers=self.headers or None)
        except RevisionConflict as e:
            self._saw(int(e.details.get("current_revision", 0)))
            raise

    async def put(self, namespace: str, key: str, value: Any, *,
                  expected_revision: int | None = None, ttl_s: int | None = None,
                  schema_version: int | None = None, request_id: str = "") -> PutReply:
        """Write ``value`` (any JSON-encodable object, or pre-encoded ``msgspec.Raw``).

        ``request_id``: pass the same one when retrying after a timeout, and the write is
        applied once (see ``PutRequest``)."""
        raw = value if isinstance(value, msgspec.Raw) else msgspec.Raw(_encoder.encode(value))
        reply = await self._call(StateSubject.PUT, PutRequest(
            namespace=namespace, key=key, value=raw, expected_revision=expected_revision,
            ttl_s=ttl_s, schema_version=schema_version, min_revision=self.config_revision,
            request_id=request_id), PutReply)
        self._saw(reply.revision)
        return reply

    async def get_reply(self, namespace: str, key: str, *, revision: int | None = None,
                        strong: bool = False) -> GetReply:
        """The reply as sent (the value still JSON bytes)."""
        reply = await self._call(StateSubject.GET, GetRequest(
            namespace=namespace, key=key, revision=revision,
            min_revision=None if strong else self.seen_revision), GetReply)
        self._saw(reply.revision)
        return reply

    async def get(self, namespace: str, key: str, *, revision: int | None = None,
                  strong: bool = False) -> Entry:
        r = await self.get_reply(namespace, key, revision=revision, strong=strong)
        return Entry(r.namespace, r.key, r.revision, msgspec.json.decode(r.value),
                     r.schema_version, r.updated_at, r.expires_at)

    async def delete(self, namespace: str, key: str, *, expected_revision: int | None = None,
                     request_id: str = "") -> DeleteReply:
        reply = await self._call(StateSubject.DELETE, DeleteRequest(
            namespace=namespace, key=key, expected_revision=expected_revision,
            request_id=request_id), DeleteReply)
        self._saw(reply.revision)
        return reply

    async def update(self, namespace: str, key: str, change: Callable[[Any], Any], *,
                     default: Any = None, attempts: int = 1000) -> PutReply:
        """Read-modify-write with compare-and-set, retried on conflict: ``change`` gets the
        current value (``default`` if the key does not exist) and returns the new one."""
        for _ in range(attempts):
            try:
                current = await self.get(namespace, key)
                value, expected = current.value, current.revision
            except NotFound:
                value, expected = default, 0
            try:
                return await self.put(namespace, key, change(value), expected_revision=expected)
            except RevisionConflict:
                continue
        raise RevisionConflict(f"{namespace}/{key}: gave up after {attempts} conflicts",
                               details={"current_revision": self.seen_revision})

    async def list_keys(self, namespace: str, *, prefix: str = "", limit: int = 100,
                   cursor: str = "", strong: bool = False) -> ListReply:
        reply = await self._call(StateSubject.LIST, ListRequest(
            namespace=namespace, prefix=prefix, limit=limit, cursor=cursor,
            min_revision=None if strong else self.seen_revision), ListReply)
        for k in reply.items:
            self._saw(k.revision)
        return reply

    async def keys(self, namespace: str, *, prefix: str = "", page: int = 500
                   ) -> AsyncIterator[KeyInfo]:
        """Every key of ``namespace`` (with ``prefix``), page by page."""
        cursor = ""
        while True:
            reply = await self.list_keys(namespace, prefix=prefix, limit=page, cursor=cursor)
            for k in reply.items:
                yield k
            if not reply.next_cursor:
                return
            cursor = reply.next_cursor

    async def history(self, namespace: str, key: str, *, limit: int = 10) -> HistoryReply:
        return await self._call(StateSubject.HISTORY, HistoryRequest(
            namespace=namespace, key=key, limit=limit), HistoryReply)

    async def configure(self, namespace: str, config: NamespaceConfig) -> NamespaceInfo:
        info = await self._call(StateSubject.CONFIGURE,
                                ConfigureRequest(namespace=namespace, config=config),
                                NamespaceInfo)
        # A configuration is a write too: later requests must see it.
        self._saw(info.revision)
        self.config_revision = max(self.config_revision, info.revision)
        return info

    async def namespaces(self, namespace: str = "") -> list[NamespaceInfo]:
        reply = await self._call(StateSubject.NAMESPACES,
                                 NamespacesRequest(namespace=namespace), NamespacesReply)
        return reply.namespaces

    async def cleanup(self, namespace: str, older_than_s: float, *, dry_run: bool = False
                      ) -> CleanupReply:
        return await self._call(StateSubject.CLEANUP, CleanupRequest(
            namespace=namespace, older_than_s=older_than_s, dry_run=dry_run), CleanupReply)

    async def snapshot(self, namespace: str = "") -> SnapshotInfo:
        return await self._call(StateSubject.SNAPSHOT, SnapshotRequest(namespace=namespace),
                                SnapshotInfo)

    async def snapshots(self) -> list[SnapshotInfo]:
        return (await self._call(StateSubject.SNAPSHOTS, Empty(), SnapshotsReply)).snapshots

    async def restore(self, name: str, namespace: str = "") -> RestoreReply:
        reply = await self._call(StateSubject.RESTORE,
                                 RestoreRequest(name=name, namespace=namespace), RestoreReply)
        self._saw(reply.revision)
        self.config_revision = max(self.config_revision, reply.revision)
        return reply

    async def download_snapshot(self, name: str) -> bytes:
        """The snapshot file's bytes (the object store checks its digest on the way)."""
        try:
            store = await self.bus.js.object_store(Bucket.STATE_SNAPSHOTS)
            result = await store.get(name)
        except ObjectNotFoundError as e:
            raise NotFound(f"no snapshot {name!r}", details={"name": name}) from e
        except (NatsError, TimeoutError) as e:  # no grant, no leader: nothing the caller did
            raise ServiceUnavailable(f"snapshot bucket unreachable: {e!r}",
                                     details={"name": name}) from e
        return bytes(result.data or b"")

    async def upload_snapshot(self, name: str, data: bytes) -> SnapshotInfo:
        """Store a snapshot file (e.g. one downloaded elsewhere) for ``restore``: staged, then
        copied into the snapshot bucket by the service if its digest matches
        (``services.state.snapshot_import``); the file's content is checked when restored.
        Needs the admin role (``headers``)."""
        upload_id = uuid.uuid4().hex
        written = await stage_object(self.bus.js, self.bus.nc, staging_subject(upload_id), data,
                                     chunk_bytes=SNAPSHOT_CHUNK_BYTES,
                                     max_bytes=max(len(data), 1))
        return await self._call(StateSubject.IMPORT, ImportSnapshot(
            name=name, upload_id=upload_id, sha256=written.sha256,
            size_bytes=written.size_bytes), SnapshotInfo)

    async def watch(self, namespace: str, *, prefix: str = "", idle_s: float | None = None,
                    max_buffer_bytes: int = WATCH_BUFFER_BYTES
                    ) -> AsyncGenerator[ChangeEvent | None, None]:
        """Changes of ``namespace`` (keys starting with ``prefix``) as they are committed;
        with ``idle_s``, a ``None`` first, as soon as the watch is live (every change committed
        after it is delivered), then after each quiet ``idle_s`` (for keep-alives). A reader
        that falls more than ``max_buffer_bytes`` behind loses the oldest changes.

        Core NATS delivery: changes made while nobody listens are not replayed (read the
        current values first, then watch, and compare revisions).
        """
        check_namespace(namespace)
        queue: ByteQueue[Msg] = ByteQueue(max_buffer_bytes)

        async def on_message(msg: Msg) -> None:
            queue.put_nowait(msg, len(msg.data))  # a slow reader loses the oldest, not memory

        sub = await self.bus.nc.subscribe(changes_subject(namespace), cb=on_message)
        await flush(self.bus.nc)  # a change made once the watch is running is not missed
        try:
            if idle_s is not None:
                yield None
            while True:
                try:
                    msg = await asyncio.wait_for(queue.get(), idle_s)
                except TimeoutError:
                    yield None
                    continue
                event = change_event(msg)
                if event is not None and event.key.startswith(prefix):
                    yield event
        finally:
            with swallowed(log, "unsubscribing the watch", level=logging.DEBUG):
                await sub.unsubscribe()


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is a valid namespace name, else ``InvalidRequest``."""
    if not _NAMESPACE.fullmatch(namespace):
        raise InvalidRequest(f"invalid namespace {namespace[:80]!r}",
                             details={"field": "namespace"})
    return namespace


def change_event(msg: Msg) -> ChangeEvent | None:
    """Decode one republished change (``state.changes.<ns>.<key>``)."""
    namespace, _, key = msg.subject[len(STATE_CHANGES_PREFIX) + 1:].partition(".")
    headers = msg.headers or {}
    if not key or "Nats-Sequence" not in headers:
        return None
    stamp = headers.get("Nats-Time-Stamp", "")
    updated = datetime.fromisoformat(stamp).timestamp() if stamp else 0.0
    deleted = headers.get(StoredHeader.KV_OPERATION) in TOMBSTONES
    return ChangeEvent(
        namespace=namespace, key=key, revision=int(headers["Nats-Sequence"]),
        operation="delete" if deleted else "put",
        value=NULL if deleted else msgspec.Raw(decode_stored(msg.data, headers)),
        schema_version=int(headers.get(StoredHeader.SCHEMA, 1)), updated_at=updated)
