"""Typed async client of the executor, over a ``shared.bus.Bus``.

    client = ExecutorClient(bus, principal="quant-1")
    task_id = (await client.submit("sleep", {"seconds": 1}, priority="high")).task_id
    record = await client.wait(task_id, timeout_s=30)      # succeeded, failed, ...
    wf = await client.submit_workflow([
        WorkflowTask(name="a", type="noop"),
        WorkflowTask(name="b", type="noop", depends_on=["a"])])
    done = await client.wait_workflow(wf.workflow.id)

``submit`` validates the type and input on the executor before queueing. ``enqueue`` publishes
straight to the JetStream queue (no validation, no request round trip): the fast path for bulk
submission; an invalid task then fails when an executor picks it up.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.errors import APIError

from shared import telemetry
from shared.bus import flush
from shared.clients.base import ServiceClient
from shared.contracts import executor as c
from shared.contracts.base import Empty
from shared.errors import QueueFull, ServiceTimeout, ServiceUnavailable
from shared.logs import swallowed
from shared.subjects import ExecutorSubject as S
from shared.subjects import Header

log = logging.getLogger(__name__)

_record = msgspec.json.Decoder(c.TaskRecord)
_workflow = msgspec.json.Decoder(c.WorkflowRecord)
_encode = msgspec.json.Encoder().encode
_WF_DONE = {c.WorkflowStatus.SUCCEEDED, c.WorkflowStatus.FAILED, c.WorkflowStatus.CANCELLED}


class ExecutorClient(ServiceClient):
    """The executor, as methods.

    Args:
        bus: the caller's NATS connection.
        principal: who submits (recorded on the task, ``Quantops-Principal``).
        headers: extra NATS headers for every request.
        timeout_s: per request; defaults to the bus's.
    """

    # --- tasks --------------------------------------------------------------------------

    async def submit(self, type: str, input: Mapping[str, Any] | msgspec.Struct | None = None,
                     *, priority: str = "normal", timeout_s: float | None = None,
                     max_attempts: int | None = None, backoff_s: float | None = None,
                     idempotency_key: str = "") -> c.SubmitReply:
        body = _as_dict(input)
        return await self._call(S.SUBMIT, c.SubmitTask(
            type=type, input=body, priority=c.Priority(priority), timeout_s=timeout_s,
            max_attempts=max_attempts, backoff_s=backoff_s, idempotency_key=idempotency_key),
            c.SubmitReply)

    async def enqueue(self, type: str, input: Mapping[str, Any] | msgspec.Struct | None = None,
                      *, priority: str = "normal", timeout_s: float | None = None,
                      max_attempts: int | None = None, idempotency_key: str = "") -> str:
        """Publish straight to ``tasks.queue.<priority>.<id>``; returns the task id."""
        task_id = c.id_for_key(idempotency_key) if idempotency_key else c.new_id()
        tm = c.TaskMessage(type=type, input=msgspec.Raw(_encode(_as_dict(input))),
                           timeout_s=timeout_s, max_attempts=max_attempts,
                           submitted_at=time.time(), idempotency_key=idempotency_key)
        headers = {**self.headers, Header.MSG_ID.value: idempotency_key or task_id}
        telemetry.inject(headers)
        try:
            await self.bus.js.publish(c.queue_subject(priority, task_id), _encode(tm),
                                      headers=headers)
        except APIError as e:
            if e.err_code == 10077:
                raise QueueFull("queue full: nothing was queued; retry later",
                                details={"retry_after_s": 5.0}) from e
            raise
        return task_id

    async def get(self, task_id: str) -> c.TaskRecord:
        return await self._call(S.GET, c.GetTask(task_id=task_id), c.TaskRecord)

    async def list(self, **filters: Any) -> c.TaskPage:
        return await self._call(S.LIST, c.ListTasks(**filters), c.TaskPage)

    async def cancel(self, task_id: str, *, reason: str = "") -> c.CancelReply:
        return await self._call(S.CANCEL, c.CancelTask(task_id=task_id, reason=reason),
                                c.CancelReply)

    async def failed_summary(self, window_s: float = 3600.0) -> c.FailedSummary:
        return await self._call(S.FAILED_SUMMARY, c.FailedSummaryRequest(window_s=window_s),
                                c.FailedSummary)

    async def activity(self, window_s: float = 3600.0, bucket_s: float = 60.0
                       ) -> c.TaskActivity:
        return await self._call(S.ACTIVITY, c.ActivityRequest(window_s=window_s,
                                                              bucket_s=bucket_s),
                                c.TaskActivity)

    async def queue(self) -> c.QueueDepth:
        return await self._call(S.QUEUE, Empty(), c.QueueDepth)

    async def purge(self, older_than_s: float, *, status: Sequence[str] = ()) -> c.PurgeReply:
        return await self._call(S.PURGE, c.PurgeTasks(
            older_than_s=older_than_s, status=[c.TaskStatus(s) for s in status]), c.PurgeReply)

    async def dead_letters(self, *, type: str = "", limit: int = 100,
                           cursor: str = "") -> c.DeadPage:
        return await self._call(S.DEAD_LIST, c.ListDead(type=type, limit=limit, cursor=cursor),
                                c.DeadPage)

    async def resubmit_dead(self, task_id: str, *, priority: str | None = None
                            ) -> c.ResubmitReply:
        return await self._call(S.DEAD_RESUBMIT, c.ResubmitDead(
            task_id=task_id, priority=c.Priority(priority) if priority else None),
            c.ResubmitReply)

    async def types(self) -> c.TaskTypes:
        return await self._call(S.TYPES, {}, c.TaskTypes)

    async def wait(self, task_id: str, *, timeout_s: float | None = None) -> c.TaskRecord:
        """Wait until the task has finished; its final record."""
        return (await self.wait_many([task_id], timeout_s=timeout_s))[0]

    async def wait_many(self, task_ids: Sequence[str], *, timeout_s: float | None = None,
                        poll_s: float = 2.0) -> builtins.list[c.TaskRecord]:
        """Wait for several tasks; records in the same order. Events bring each end at once;
        a poll every ``poll_s`` covers an event missed in a reconnect."""
        waiter = _Waiter(self, list(task_ids))
        await waiter.start()
        try:
            return await waiter.run(timeout_s, poll_s)
        finally:
            await waiter.stop()

    # --- workflows ----------------------------------------------------------------------

    async def submit_workflow(self, tasks: Sequence[c.WorkflowTask], *,
                              on_failure: str = "fail", name: str = "",
                              idempotency_key: str = "") -> c.WorkflowReply:
        return await self._call(S.WORKFLOW_SUBMIT, c.SubmitWorkflow(
            tasks=list(tasks), on_failure=c.OnFailure(on_failure), name=name,
            idempotency_key=idempotency_key), c.WorkflowReply)

    async def get_workflow(self, workflow_id: str) -> c.WorkflowRecord:
        return await self._call(S.WORKFLOW_GET, c.GetWorkflow(workflow_id=workflow_id),
                                c.WorkflowRecord)

    async def cancel_workflow(self, workflow_id: str, *, reason: str = "") -> c.WorkflowRecord:
        return await self._call(S.WORKFLOW_CANCEL, c.CancelWorkflow(
            workflow_id=workflow_id, reason=reason), c.WorkflowRecord)

    async def wait_workflow(self, workflow_id: str, *, timeout_s: float | None = None,
                            poll_s: float = 0.5) -> c.WorkflowRecord:
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            with contextlib.suppress(ServiceUnavailable, ServiceTimeout):  # a restart: poll on
                wf = await self.get_workflow(workflow_id)
                if wf.status in _WF_DONE:
                    return wf
            if deadline is not None and time.monotonic() > deadline:
                raise ServiceTimeout(f"workflow {workflow_id} not finished after {timeout_s} s",
                                     details={"workflow_id": workflow_id})
            await asyncio.sleep(poll_s)


class _Waiter:
    def __init__(self, client: ExecutorClient, task_ids: list[str]) -> None:
        self.client = client
        self.ids = task_ids
        self.done: dict[str, c.TaskRecord] = {}
        self.changed = asyncio.Event()
        self.subs: list[Any] = []

    async def start(self) -> None:
        nc = self.client.bus.nc
        for task_id in dict.fromkeys(self.ids):
            self.subs.append(await nc.subscribe(c.task_event_subject("*", task_id),
                                                cb=self._on_event))
        await flush(nc)  # registered before the caller reads the current status

    async def _on_event(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError):
            rec = _record.decode(msg.data)
            if rec.status in c.TERMINAL:
                self.done[rec.id] = rec
                self.changed.set()

    async def _poll(self) -> None:
        missing = [t for t in dict.fromkeys(self.ids) if t not in self.done]
        try:
            records = await asyncio.gather(*(self.client.get(t) for t in missing))
        except (ServiceUnavailable, ServiceTimeout):
            return  # an executor restarting or NATS reconnecting: the next poll will tell
        for rec in records:
            if rec.status in c.TERMINAL:
                self.done.setdefault(rec.id, rec)

    async def run(self, timeout_s: float | None, poll_s: float) -> list[c.TaskRecord]:
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        await self._poll()
        while any(t not in self.done for t in self.ids):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                missing = [t for t in self.ids if t not in self.done]
                raise ServiceTimeout(f"{len(missing)} task(s) not finished after {timeout_s} s",
                                     details={"task_ids": missing[:20]})
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(poll_s, left or poll_s))
                continue
            await self._poll()
        return [self.done[t] for t in self.ids]

    async def stop(self) -> None:
        for sub in self.subs:
            with swallowed(log, "unsubscribing", level=logging.DEBUG):
                await sub.unsubscribe()


def _as_dict(value: Mapping[str, Any] | msgspec.Struct | None) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, msgspec.Struct):
        out = msgspec.to_builtins(value)
        assert isinstance(out, dict)
        return out
    return dict(value)
