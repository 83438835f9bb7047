"""Subject -> function: the executor's request/reply surface (``ExecutorSubject``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from services.executor.api import queries
from services.executor.api.cancellation import Canceller
from services.executor.api.deadletters import DeadLetters
from services.executor.api.submission import Submitter
from services.executor.api.workflows import Workflows
from services.executor.storage.store import StatusStore
from services.executor.storage.streams import queue_depth
from services.executor.tasktypes import TaskRegistry
from shared.bus import Context, Handler
from shared.contracts.base import Empty
from shared.contracts.executor import (
    TERMINAL,
    ActivityRequest,
    CancelReply,
    CancelTask,
    CancelWorkflow,
    DeadPage,
    FailedSummary,
    FailedSummaryRequest,
    GetTask,
    GetWorkflow,
    ListDead,
    ListTasks,
    PurgeReply,
    PurgeTasks,
    QueueDepth,
    ResubmitDead,
    ResubmitReply,
    SubmitReply,
    SubmitTask,
    SubmitWorkflow,
    TaskActivity,
    TaskPage,
    TaskRecord,
    TaskTypes,
    WorkflowRecord,
    WorkflowReply,
)
from shared.errors import InvalidRequest, NotFound
from shared.subjects import ExecutorSubject as S


@dataclass
class Handlers:
    registry: TaskRegistry
    store: StatusStore
    submitter: Submitter
    canceller: Canceller
    dead_letters: DeadLetters
    workflows: Workflows
    list_window_s: float

    def routes(self) -> dict[str, Handler]:
        """Each operation's handler; subjects, Structs and roles are in ``shared.operations``."""
        return {
            S.SUBMIT: self.submit,
            S.GET: self.get,
            S.LIST: self.list,
            S.CANCEL: self.cancel,
            S.FAILED_SUMMARY: self.failed_summary,
            S.ACTIVITY: self.activity,
            S.QUEUE: self.queue,
            S.PURGE: self.purge,
            S.DEAD_LIST: self.dead_list,
            S.DEAD_RESUBMIT: self.dead_resubmit,
            S.WORKFLOW_SUBMIT: self.workflow_submit,
            S.WORKFLOW_GET: self.workflow_get,
            S.WORKFLOW_CANCEL: self.workflow_cancel,
            S.TYPES: self.types,
        }

    async def submit(self, req: SubmitTask, ctx: Context) -> SubmitReply:
        return await self.submitter.submit(req, principal=ctx.principal, role=ctx.role,
                                           headers=ctx.outgoing_headers())

    async def get(self, req: GetTask, ctx: Context) -> TaskRecord:
        record = await self.store.get_or_queued(req.task_id)
        if record is None:
            raise NotFound(f"no task {req.task_id}", details={"task_id": req.task_id})
        return record

    async def list(self, req: ListTasks, ctx: Context) -> TaskPage:
        if req.cursor:
            queries.decode_cursor(req.cursor)  # a bad cursor fails before the scan
        # A task submitted since ``since`` was written since then too: read only that window
        # (without one, the last ``list_window_s``: never every record kept).
        since = req.since if req.since is not None else time.time() - self.list_window_s
        records = [r async for r in self.store.scan(updated_since=since)]
        items, total, cursor = queries.page(records, req)
        return TaskPage(items=items, total=total, next_cursor=cursor, scanned=len(records))

    async def cancel(self, req: CancelTask, ctx: Context) -> CancelReply:
        return await self.canceller.cancel(req.task_id, req.reason)

    async def failed_summary(self, req: FailedSummaryRequest, ctx: Context) -> FailedSummary:
        now = time.time()
        records = await self.store.failures(now - req.window_s)
        return queries.failed_summary(records, now - req.window_s, now)

    async def activity(self, req: ActivityRequest, ctx: Context) -> TaskActivity:
        now = time.time()
        records = await self.store.written_or_unfinished(
            now - queries.window_of(req.window_s, req.bucket_s))
        reply = queries.activity(records, now, req.window_s, req.bucket_s)
        return msgspec.structs.replace(reply, scanned=len(records))

    async def queue(self, req: Empty, ctx: Context) -> QueueDepth:
        return await queue_depth(self.store.js)

    async def purge(self, req: PurgeTasks, ctx: Context) -> PurgeReply:
        unfinished = [str(s) for s in req.status if s not in TERMINAL]
        if unfinished:
            raise InvalidRequest(f"only finished tasks can be purged, not {unfinished}",
                                 details={"status": unfinished})
        records = [r async for r in self.store.scan()]
        ids = queries.purgeable(records, time.time() - req.older_than_s, req.status)
        for task_id in ids:
            await self.store.purge(task_id)
        return PurgeReply(purged=len(ids), scanned=len(records))

    async def dead_list(self, req: ListDead, ctx: Context) -> DeadPage:
        return await self.dead_letters.list(req)

    async def dead_resubmit(self, req: ResubmitDead, ctx: Context) -> ResubmitReply:
        return await self.dead_letters.resubmit(req, principal=ctx.principal, role=ctx.role,
                                                headers=ctx.outgoing_headers())

    async def workflow_submit(self, req: SubmitWorkflow, ctx: Context) -> WorkflowReply:
        return await self.workflows.submit(req, principal=ctx.principal, role=ctx.role,
                                           headers=ctx.outgoing_headers())

    async def workflow_get(self, req: GetWorkflow, ctx: Context) -> WorkflowRecord:
        return await self.workflows.get(req.workflow_id)

    async def workflow_cancel(self, req: CancelWorkflow, ctx: Context) -> WorkflowRecord:
        return await self.workflows.cancel(req.workflow_id, req.reason)

    async def types(self, req: Empty, ctx: Context) -> TaskTypes:
        return TaskTypes(items=self.registry.infos(), errors=self.registry.errors)
