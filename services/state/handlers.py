"""Subject -> function: each state subject, the Struct it takes, and who does the work.

Every handler is counted by namespace, operation and outcome; a namespace that is not a valid
name is counted as ``_invalid`` so a stream of bad requests cannot grow the metric's labels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.state import metrics, names
from services.state.namespaces import Namespaces
from services.state.reads import Reader
from services.state.snapshots import Snapshots
from services.state.writes import Writer
from shared.bus import Context, Handler
from shared.contracts.base import Empty
from shared.contracts.state import (
    CleanupReply,
    CleanupRequest,
    ConfigureRequest,
    DeleteRequest,
    GetRequest,
    HistoryRequest,
    ListRequest,
    NamespaceInfo,
    NamespacesReply,
    NamespacesRequest,
    PutRequest,
    RestoreReply,
    RestoreRequest,
    SnapshotInfo,
    SnapshotRequest,
    SnapshotsReply,
)
from shared.errors import QuantopsError
from shared.subjects import StateSubject


def counted(operation: str, work: Callable[[Any], Awaitable[Any]]) -> Handler:
    async def handle(request: Any, ctx: Context) -> Any:
        label = _label(getattr(request, "namespace", "") or "_all")
        try:
            reply = await work(request)
        except QuantopsError as e:
            metrics.operation(label, operation, e.code)
            raise
        metrics.operation(label, operation)
        return reply

    return handle


def _label(ns: str) -> str:
    if ns == "_all":
        return ns
    try:
        return names.namespace(ns)
    except QuantopsError:
        return "_invalid"


class Handlers:
    def __init__(self, reader: Reader, writer: Writer, namespaces: Namespaces,
                 snapshots: Snapshots) -> None:
        self.reader = reader
        self.writer = writer
        self.namespaces = namespaces
        self.snapshots = snapshots

    def routes(self) -> list[tuple[StateSubject, Handler, type[Any]]]:
        return [
            (StateSubject.PUT, counted("put", self.writer.put), PutRequest),
            (StateSubject.GET, counted("get", self.reader.get), GetRequest),
            (StateSubject.DELETE, counted("delete", self.writer.delete), DeleteRequest),
            (StateSubject.LIST, counted("list", self.reader.list_keys), ListRequest),
            (StateSubject.HISTORY, counted("history", self.reader.history), HistoryRequest),
            (StateSubject.NAMESPACES, counted("namespaces", self.list_namespaces),
             NamespacesRequest),
            (StateSubject.CONFIGURE, counted("configure", self.configure), ConfigureRequest),
            (StateSubject.CLEANUP, counted("cleanup", self.cleanup), CleanupRequest),
            (StateSubject.SNAPSHOT, counted("snapshot", self.snapshot), SnapshotRequest),
            (StateSubject.SNAPSHOTS, counted("snapshots", self.list_snapshots), Empty),
            (StateSubject.RESTORE, counted("restore", self.restore), RestoreRequest),
        ]

    async def list_namespaces(self, req: NamespacesRequest) -> NamespacesReply:
        if req.namespace:
            return NamespacesReply(namespaces=[self.namespaces.info(names.namespace(
                req.namespace))])
        return NamespacesReply(namespaces=self.namespaces.all())

    async def configure(self, req: ConfigureRequest) -> NamespaceInfo:
        return await self.namespaces.configure(req.namespace, req.config)

    async def cleanup(self, req: CleanupRequest) -> CleanupReply:
        return await self.namespaces.cleanup(req.namespace, req.older_than_s,
                                             dry_run=req.dry_run)

    async def snapshot(self, req: SnapshotRequest) -> SnapshotInfo:
        return await self.snapshots.create(req.namespace)

    async def list_snapshots(self, _: Empty) -> SnapshotsReply:
        return SnapshotsReply(snapshots=await self.snapshots.list_all())

    async def restore(self, req: RestoreRequest) -> RestoreReply:
        return await self.snapshots.restore(req.name, req.namespace)
