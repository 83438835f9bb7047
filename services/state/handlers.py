"""Subject -> function: who does the work of each state operation (``shared.operations``).

Every request is counted (the ``counted`` middleware) by namespace, operation and outcome; a
namespace that is not a valid name is counted as ``_invalid`` so a stream of bad requests cannot
grow the metric's labels.
"""

from __future__ import annotations

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
    DeleteReply,
    DeleteRequest,
    GetReply,
    GetRequest,
    HistoryReply,
    HistoryRequest,
    ImportSnapshot,
    ListReply,
    ListRequest,
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
)
from shared.errors import QuantopsError
from shared.operations import Operation
from shared.subjects import StateSubject


def counted(handler: Handler, op: Operation) -> Handler:
    """Middleware: count each request by namespace, operation and outcome."""
    operation = op.subject.rsplit(".", 1)[1] if op.subject.startswith("state.kv.") \
        else _OPERATION_NAMES[op.subject]

    async def handle(request: Any, ctx: Context) -> Any:
        label = _label(getattr(request, "namespace", "") or "_all")
        try:
            reply = await handler(request, ctx)
        except QuantopsError as e:
            metrics.operation(label, operation, e.code)
            raise
        metrics.operation(label, operation)
        return reply

    return handle


#: The metric's ``operation`` label of the subjects outside ``state.kv.*`` (stable names).
_OPERATION_NAMES: dict[str, str] = {
    StateSubject.NAMESPACES: "namespaces", StateSubject.CONFIGURE: "configure",
    StateSubject.CLEANUP: "cleanup", StateSubject.SNAPSHOT: "snapshot",
    StateSubject.SNAPSHOTS: "snapshots", StateSubject.RESTORE: "restore",
    StateSubject.IMPORT: "import",
}


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

    def routes(self) -> dict[str, Handler]:
        """Each operation's handler; subjects, Structs and roles are in ``shared.operations``."""
        return {
            StateSubject.PUT: self.put,
            StateSubject.GET: self.get,
            StateSubject.DELETE: self.delete,
            StateSubject.LIST: self.list_keys,
            StateSubject.HISTORY: self.history,
            StateSubject.NAMESPACES: self.list_namespaces,
            StateSubject.CONFIGURE: self.configure,
            StateSubject.CLEANUP: self.cleanup,
            StateSubject.SNAPSHOT: self.snapshot,
            StateSubject.SNAPSHOTS: self.list_snapshots,
            StateSubject.RESTORE: self.restore,
            StateSubject.IMPORT: self.import_snapshot,
        }

    async def put(self, req: PutRequest, ctx: Context) -> PutReply:
        return await self.writer.put(req)

    async def get(self, req: GetRequest, ctx: Context) -> GetReply:
        return await self.reader.get(req)

    async def delete(self, req: DeleteRequest, ctx: Context) -> DeleteReply:
        return await self.writer.delete(req)

    async def list_keys(self, req: ListRequest, ctx: Context) -> ListReply:
        return await self.reader.list_keys(req)

    async def history(self, req: HistoryRequest, ctx: Context) -> HistoryReply:
        return await self.reader.history(req)

    async def list_namespaces(self, req: NamespacesRequest, ctx: Context) -> NamespacesReply:
        if req.namespace:
            return NamespacesReply(namespaces=[self.namespaces.info(names.namespace(
                req.namespace))])
        return NamespacesReply(namespaces=self.namespaces.all())

    async def configure(self, req: ConfigureRequest, ctx: Context) -> NamespaceInfo:
        return await self.namespaces.configure(req.namespace, req.config)

    async def cleanup(self, req: CleanupRequest, ctx: Context) -> CleanupReply:
        return await self.namespaces.cleanup(req.namespace, req.older_than_s,
                                             dry_run=req.dry_run)

    async def snapshot(self, req: SnapshotRequest, ctx: Context) -> SnapshotInfo:
        return await self.snapshots.create(req.namespace)

    async def import_snapshot(self, req: ImportSnapshot, ctx: Context) -> SnapshotInfo:
        return await self.snapshots.import_staged(req)

    async def list_snapshots(self, _: Empty, ctx: Context) -> SnapshotsReply:
        return SnapshotsReply(snapshots=await self.snapshots.list_all())

    async def restore(self, req: RestoreRequest, ctx: Context) -> RestoreReply:
        return await self.snapshots.restore(req.name, req.namespace)
