"""Workflows: DAGs of tasks whose state lives in JetStream, so any executor can advance them.

The workflow record (KV bucket ``quantops_workflows``) is updated with compare-and-set. When a
node's task ends, the executor that ran it calls ``on_task_finished`` *before* acking the task
message: it queues the nodes that became ready (their ``Nats-Msg-Id`` is their task id, so a
repeat is deduplicated), records the nodes that will never run, and stores the new record. If
the executor dies anywhere in between, the message is redelivered, the runner sees the task's
final record and runs ``on_task_finished`` again: a restart mid-workflow loses nothing.
A finished workflow's record carries ``Nats-TTL`` (``workflow_ttl_s``): JetStream removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.executor.api import dag
from services.executor.api.submission import Submitter, limits
from services.executor.storage.statuswriter import StatusWriter
from services.executor.storage.store import MARKER_TTL_S, StatusStore, find_queued
from shared import telemetry
from shared.contracts.executor import (
    TERMINAL,
    NodeState,
    SubmitTask,
    SubmitWorkflow,
    TaskError,
    TaskRecord,
    TaskStatus,
    WorkflowRecord,
    WorkflowReply,
    WorkflowStatus,
    WorkflowTask,
    id_for_key,
    new_id,
    workflow_event_subject,
)
from shared.errors import Conflict, NotFound, QuantopsError
from shared.kvbuckets import delete_expiring
from shared.logs import swallowed
from shared.subjects import Bucket, Stream

log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder(WorkflowRecord).decode
_encode = msgspec.json.Encoder().encode

#: JetStream's "wrong last sequence" codes: another writer moved the record first.
_WRONG_LAST_SEQUENCE = (10071, 10164)

CancelTask = Callable[[str, str], Awaitable[object]]


class Workflows:
    """Workflow records in their KV bucket, advanced by compare-and-set.

    Args:
        final_ttl_s: a finished workflow's record carries this ``Nats-TTL``, so JetStream
            removes it that long after it finished; None: kept until purged.
    """

    def __init__(self, nc: NATS, js: JetStreamContext, kv: KeyValue, submitter: Submitter,
                 store: StatusStore, writer: StatusWriter, *,
                 final_ttl_s: float | None = None) -> None:
        self.nc = nc
        self.js = js
        self.kv = kv
        self.final_ttl_s = final_ttl_s
        self._subject = f"$KV.{Bucket.WORKFLOWS}."
        self.submitter = submitter
        self.store = store
        self.writer = writer
        self.cancel_task: CancelTask | None = None  # set by the service (cancellation)

    async def submit(self, req: SubmitWorkflow, *, principal: str = "", role: str = "",
                     headers: dict[str, str] | None = None) -> WorkflowReply:
        dag.validate(req.tasks)
        for t in req.tasks:  # every node's type and input, before anything is stored
            self.submitter.message_for(_as_submit(t))
        wf_id = id_for_key(req.idempotency_key, "w") if req.idempotency_key else new_id("w")
        now = time.time()
        trace: dict[str, str] = {}
        telemetry.inject(trace)
        wf = WorkflowRecord(
            id=wf_id, status=WorkflowStatus.RUNNING, on_failure=req.on_failure, name=req.name,
            created_at=now, updated_at=now, principal=principal, role=role, trace=trace,
            nodes=[NodeState(name=t.name, task_id=f"{wf_id}-{t.name}", spec=t)
                   for t in req.tasks])
        try:
            await self.kv.create(wf_id, _encode(wf))
        except KeyWrongLastSequenceError:
            return WorkflowReply(workflow=await self.get(wf_id), duplicate=True)
        try:
            wf = (await self._advance(wf_id, {}, headers=headers)).workflow
        except QuantopsError:
            await self._undo(wf_id)
            raise
        await self._event(wf)
        return WorkflowReply(workflow=wf)

    async def get(self, wf_id: str) -> WorkflowRecord:
        wf, _ = await self._load(wf_id)
        # Live statuses of queued nodes (the record only changes when a node ends).
        live = [n for n in wf.nodes if n.status == TaskStatus.QUEUED]
        records = await asyncio.gather(*(self.store.get(n.task_id) for n in live))
        status = {n.name: r.status for n, r in zip(live, records, strict=True) if r}
        nodes = [msgspec.structs.replace(n, status=str(status[n.name])) if n.name in status
                 else n for n in wf.nodes]
        return msgspec.structs.replace(wf, nodes=nodes)

    async def on_task_finished(self, record: TaskRecord) -> None:
        """A node's task ended (its record is durable): advance its workflow."""
        if record.status not in TERMINAL:
            return
        error = record.error.message if record.error else ""
        try:
            result = await self._advance(record.workflow_id,
                                         {record.node: (str(record.status), error)})
        except NotFound:
            log.warning("task of an unknown workflow finished",
                        extra={"task_id": record.id, "workflow_id": record.workflow_id})
            return
        if result.finished:
            await self._event(result.workflow)

    async def cancel(self, wf_id: str, reason: str) -> WorkflowRecord:
        for _ in range(50):
            wf, rev = await self._load(wf_id)
            if wf.status != WorkflowStatus.RUNNING:
                raise Conflict(f"workflow {wf_id} is already {wf.status}",
                               details={"workflow_id": wf_id, "status": str(wf.status)})
            result = dag.cancel_pending(wf, reason or "workflow cancelled", time.time())
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._update(result.workflow, last=rev)
                await self._record_doomed(result.workflow, result.doomed)
                if self.cancel_task is not None:
                    for n in wf.nodes:
                        if n.status == TaskStatus.QUEUED:
                            await self.cancel_task(n.task_id, reason or "workflow cancelled")
                await self._event(result.workflow)
                return await self.get(wf_id)
        raise Conflict(f"workflow {wf_id} kept changing; try again")

    async def _advance(self, wf_id: str, updates: dict[str, tuple[str, str]], *,
                       headers: dict[str, str] | None = None) -> dag.Step:
        for _ in range(100):  # compare-and-set: another executor may advance it concurrently
            wf, rev = await self._load(wf_id)
            result = dag.step(wf, updates, time.time())
            for node in result.ready:
                await self._enqueue(result.workflow, node, headers)
            try:
                await self._update(result.workflow, last=rev)
            except KeyWrongLastSequenceError:
                continue
            await self._record_doomed(result.workflow, result.doomed)
            return result
        raise Conflict(f"workflow {wf_id} kept changing; try again")

    async def _update(self, wf: WorkflowRecord, *, last: int) -> None:
        """``kv.update`` (compare-and-set on the revision), with ``Nats-TTL`` once the workflow
        has finished: nats-py's ``update`` takes no TTL, so the same publish is made here."""
        ttl = self.final_ttl_s if wf.finished_at is not None else None
        try:
            await self.js.publish(
                self._subject + wf.id, _encode(wf),
                headers={api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE: str(last)},
                msg_ttl=math.ceil(ttl) if ttl else None)
        except APIError as e:
            if e.err_code in _WRONG_LAST_SEQUENCE:
                raise KeyWrongLastSequenceError(description=e.description) from e
            raise

    async def _enqueue(self, wf: WorkflowRecord, node: NodeState,
                       headers: dict[str, str] | None) -> None:
        parents = {d: f"{wf.id}-{d}" for d in node.spec.depends_on}
        tm = self.submitter.message_for(_as_submit(node.spec), principal=wf.principal,
                                        role=wf.role, workflow_id=wf.id, node=node.name,
                                        parents=parents)
        out = {**wf.trace, **(headers or {})}
        await self.submitter.enqueue(node.task_id, node.spec.priority, tm,
                                     msg_id=node.task_id, headers=out)

    async def _record_doomed(self, wf: WorkflowRecord, doomed: list[NodeState]) -> None:
        """Status records for nodes that will never run, so each task id reads as it ended."""
        now = time.time()
        for node in doomed:
            status = TaskStatus(node.status)
            task_type = self.submitter.registry.find(node.spec.type)
            timeout_s, attempts = limits(task_type, self.submitter.message_for(
                _as_submit(node.spec)), self.submitter.settings)
            rec = TaskRecord(
                id=node.task_id, type=node.spec.type, status=status, priority=node.spec.priority,
                max_attempts=attempts, timeout_s=timeout_s, submitted_at=wf.created_at,
                finished_at=now, updated_at=now, workflow_id=wf.id, node=node.name,
                error=TaskError(type="upstream" if status != TaskStatus.CANCELLED
                                else "cancelled", message=node.error),
                principal=wf.principal)
            await self.writer.write_and_wait(node.task_id, status, _encode(rec))

    async def _load(self, wf_id: str) -> tuple[WorkflowRecord, int]:
        try:
            entry = await self.kv.get(wf_id)
        except KeyNotFoundError as e:
            raise NotFound(f"no workflow {wf_id}", details={"workflow_id": wf_id}) from e
        if not entry.value or entry.revision is None:
            raise NotFound(f"no workflow {wf_id}", details={"workflow_id": wf_id})
        return _decode(entry.value), entry.revision

    async def _undo(self, wf_id: str) -> None:
        """A submission refused half-way (queue full): take back what was queued."""
        with swallowed(log, "taking back a refused workflow's queued tasks"):
            wf, _ = await self._load(wf_id)
            for n in wf.nodes:
                found = await find_queued(self.js, n.task_id)
                if found is not None:
                    await self.js.delete_msg(Stream.TASKS, found[1])
        with swallowed(log, "deleting a refused workflow"):
            await delete_expiring(self.js, Bucket.WORKFLOWS, wf_id, ttl_s=MARKER_TTL_S)

    async def _event(self, wf: WorkflowRecord) -> None:
        with swallowed(log, "publishing a workflow event"):
            await self.nc.publish(workflow_event_subject(str(wf.status), wf.id), _encode(wf))


def _as_submit(t: WorkflowTask) -> SubmitTask:
    return SubmitTask(type=t.type, input=t.input, priority=t.priority, timeout_s=t.timeout_s,
                      max_attempts=t.max_attempts, backoff_s=t.backoff_s)
