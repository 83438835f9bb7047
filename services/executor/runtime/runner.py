"""Running one delivered task message: checks, the body, and the durable outcome.

The order of a run is what makes it safe:
1. decode and check (already cancelled, already finished on an earlier delivery, unknown type,
   bad input, out of attempts) without running anything;
2. record ``running``; run the body under its timeout (the engine's reaper cancels it);
3. turn the end into an ``Outcome`` (``outcome.py``), write the record, and only once it is
   durable ack or nak the message (``StatusWriter``'s ``then``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.executor import metrics
from services.executor.api.submission import limits
from services.executor.runtime import outcome
from services.executor.runtime.context import RunContext
from services.executor.runtime.outcome import Ack, Outcome
from services.executor.runtime.puller import ack_info
from shared import telemetry
from shared.contracts.executor import (
    TERMINAL,
    DeadLetter,
    Priority,
    TaskError,
    TaskMessage,
    TaskRecord,
    TaskStatus,
)
from shared.errors import QuantopsError
from shared.tasks import TaskKind, TaskType

if TYPE_CHECKING:
    from services.executor.api.deadletters import DeadLetters
    from services.executor.api.submission import Submitter
    from services.executor.api.workflows import Workflows
    from services.executor.runtime.workers import WorkerPool
    from services.executor.storage.statuswriter import StatusWriter
    from services.executor.storage.store import StatusStore
    from services.executor.tasktypes import TaskRegistry
    from shared.bus import Bus
    from shared.settings import ExecutorSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("quantops.executor")

_decode_message = msgspec.json.Decoder(TaskMessage).decode
_encode = msgspec.json.Encoder().encode

TIMEOUT = "timeout"
SHUTDOWN = "shutdown"


class Run:
    """One delivered message from arrival to ack."""

    __slots__ = ("attempt", "body", "cancel_reason", "correlation_id", "ctx", "deadline",
                 "in_body", "make_record", "msg", "pending", "priority", "queued_at", "record",
                 "started", "task_id", "worker_pid")

    def __init__(self, priority: Priority, msg: Msg) -> None:
        self.priority = priority
        self.msg = msg
        self.task_id = msg.subject.rpartition(".")[2]
        try:
            self.attempt, self.queued_at, pending = ack_info(msg.reply)
            self.pending: int | None = pending
        except (ValueError, IndexError):
            self.attempt, self.queued_at, self.pending = 1, time.time(), None
        self.body: asyncio.Task[Any] | None = None  # the asyncio task running this message
        self.in_body = False  # True while the task's own code runs (cancellable)
        self.deadline: float | None = None
        self.cancel_reason: str | None = None
        self.correlation_id = ""
        self.ctx: RunContext | None = None
        self.record: TaskRecord | None = None
        self.make_record: Callable[[], TaskRecord] | None = None
        self.started = 0.0
        self.worker_pid: int | None = None

    def cancel(self, reason: str) -> bool:
        """Stop the body if it is running; the run then ends with this reason."""
        if not self.in_body or self.body is None or self.cancel_reason is not None:
            return False
        self.cancel_reason = reason
        self.body.cancel()
        return True

    def running_record(self) -> TaskRecord | None:
        """The ``running`` record, built on first use: for a task that ends before its status
        batch leaves, it is never needed (the final record supersedes it)."""
        if self.record is None and self.make_record is not None:
            self.record = self.make_record()
        return self.record

    def running_bytes(self) -> bytes:
        return _encode(self.running_record())


@dataclass
class Runtime:
    """What a run needs from the executor."""

    bus: Bus
    settings: ExecutorSettings
    registry: TaskRegistry
    writer: StatusWriter
    store: StatusStore
    submitter: Submitter
    dead_letters: DeadLetters
    workflows: Workflows
    pool: WorkerPool
    instance: str
    release: Callable[[Run], None]
    is_cancelled: Callable[[str], bool]
    tracing: bool = False

    def note_worker(self, run: Run) -> None:
        """Record at once which worker process took the task (operators look for it there)."""
        rec = run.running_record()
        if rec is not None and rec.status == TaskStatus.RUNNING:
            self._write_running(run, rec, updated_at=time.time())

    def note_progress(self, run: Run, fraction: float, note: str, *, force: bool) -> None:
        rec = run.running_record()
        if rec is None or rec.status != TaskStatus.RUNNING:
            return
        now = time.time()
        if not force and rec.progress is not None and now - rec.updated_at < 1.0:
            return
        self._write_running(run, rec, progress=fraction, progress_note=note[:200],
                            updated_at=now)

    def _write_running(self, run: Run, rec: TaskRecord, **changes: Any) -> None:
        """The running record with ``changes`` and the current worker pid, written."""
        run.record = msgspec.structs.replace(rec, worker_pid=run.worker_pid, **changes)
        self.writer.write(run.task_id, TaskStatus.RUNNING, _encode(run.record))


class Runner:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._tasks: set[asyncio.Task[None]] = set()

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def execute(self, run: Run) -> None:
        try:
            await self._execute(run)
        except Exception:  # a bug here must not lose the message: hand it back
            log.exception("run failed", extra={"task_id": run.task_id})
            await self._settle(run, Outcome(TaskStatus.QUEUED, ack=Ack.NAK, delay_s=5.0))

    async def _execute(self, run: Run) -> None:
        queued_at = run.queued_at
        try:
            tm = _decode_message(run.msg.data)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            tm = TaskMessage(type="?", submitted_at=queued_at)
            bad = outcome.invalid(f"malformed task message: {e}")
            return await self._finish(run, tm, bad, 1, 0)
        if not tm.submitted_at:
            tm = msgspec.structs.replace(tm, submitted_at=queued_at)
        task_type = self.rt.registry.find(tm.type)
        timeout_s, max_attempts = limits(task_type, tm, self.rt.settings)
        if self.rt.is_cancelled(run.task_id):
            # This delivery never ran: the record counts only the attempts that did.
            early = outcome.cancelled("cancelled before it started")
            return await self._finish(run, tm, early, max_attempts, timeout_s,
                                      attempts=run.attempt - 1)
        if run.attempt > 1 and await self._finished_before(run):
            return None
        if task_type is None:
            known = ", ".join(self.rt.registry.names())
            message = f"unknown task type {tm.type!r} (known: {known})"
            return await self._finish(run, tm, outcome.invalid(message), max_attempts, timeout_s)
        try:
            inp = self.rt.registry.decode_input(tm.type, tm.input)
        except QuantopsError as e:
            return await self._finish(run, tm, outcome.invalid(e.message), max_attempts, timeout_s)
        if run.attempt > max_attempts:
            lost = Outcome(TaskStatus.DEAD, error=TaskError(
                type="executor_lost", retryable=True, message=f"delivered {run.attempt} times: "
                "the executor running it stopped without finishing"))
            return await self._finish(run, tm, lost, max_attempts, timeout_s)
        result = await self._attempt(run, tm, task_type, inp, timeout_s, max_attempts)
        return await self._finish(run, tm, result, max_attempts, timeout_s)

    async def _finished_before(self, run: Run) -> bool:
        """A redelivery of a task whose final record was written (the ack got lost): finish
        what the first delivery started (workflow bookkeeping) and ack, without running."""
        existing = await self.rt.store.get(run.task_id)
        if existing is None or existing.status not in TERMINAL:
            return False
        if existing.workflow_id:
            await self.rt.workflows.on_task_finished(existing)
        await self._settle(run, Outcome(existing.status))
        return True

    async def _attempt(self, run: Run, tm: TaskMessage, task_type: TaskType[Any], inp: Any,
                       timeout_s: float, max_attempts: int) -> Outcome:
        rt = self.rt
        run.correlation_id = (run.msg.headers or {}).get("X-Correlation-ID", "")
        run.started = time.time()
        run.make_record = lambda: self._record(run, tm, TaskStatus.RUNNING, max_attempts,
                                               timeout_s)
        rt.writer.write(run.task_id, TaskStatus.RUNNING, run.running_bytes)
        metrics.for_type(tm.type).start()
        ctx = run.ctx = RunContext(rt, run, tm, max_attempts)
        run.deadline = time.monotonic() + timeout_s
        run.in_body = True
        try:
            if rt.tracing:
                return await self._traced(run, tm, task_type, inp, ctx, max_attempts)
            return await self._body(run, tm, task_type, inp, ctx, max_attempts)
        finally:
            run.in_body = False
            run.deadline = None

    async def _traced(self, run: Run, tm: TaskMessage, task_type: TaskType[Any], inp: Any,
                      ctx: RunContext, max_attempts: int) -> Outcome:
        # The execution span is a child of the submission's context carried in the headers.
        attrs: dict[str, str | int] = {
                 "messaging.system": "nats", "messaging.operation.type": "process",
                 "messaging.destination.name": run.msg.subject, "quantops.task_id": run.task_id,
                 "quantops.task_type": tm.type, "quantops.attempt": run.attempt,
                 telemetry.ATTR_CORRELATION_ID: run.correlation_id}
        with tracer.start_as_current_span(f"task {tm.type} run", kind=SpanKind.CONSUMER,
                                          context=telemetry.extract(run.msg.headers),
                                          attributes=attrs) as span:
            result = await self._body(run, tm, task_type, inp, ctx, max_attempts)
            if result.status != TaskStatus.SUCCEEDED:
                span.set_status(Status(StatusCode.ERROR, str(result.status)))
            return result

    async def _body(self, run: Run, tm: TaskMessage, task_type: TaskType[Any], inp: Any,
                    ctx: RunContext, max_attempts: int) -> Outcome:
        settings = self.rt.settings
        try:
            if task_type.kind == TaskKind.CPU:
                value = await ctx.run_in_process(task_type.run, inp)
            else:
                value = await task_type.run(inp, ctx)
            return self._success(value)
        except asyncio.CancelledError:
            reason = run.cancel_reason
            task = asyncio.current_task()
            if reason is None or task is None:
                raise
            task.uncancel()
            if ctx.children:
                self._background(ctx.cancel_children(f"parent {run.task_id}: {reason}"))
            if reason == TIMEOUT:
                rec = run.running_record()
                return outcome.timed_out(rec.timeout_s if rec else 0.0)
            if reason == SHUTDOWN:
                return outcome.handed_back("executor shutting down; handed back to the queue")
            return outcome.cancelled(reason)
        except Exception as e:
            base_s = tm.backoff_s if tm.backoff_s is not None else settings.retry_backoff_s
            return outcome.failure(e, attempt=run.attempt, max_attempts=max_attempts,
                                   base_s=base_s, max_s=settings.retry_backoff_max_s,
                                   retry_on=task_type.retry_on)

    def _success(self, value: Any) -> Outcome:
        try:
            data = _encode(value)
        except (TypeError, msgspec.EncodeError) as e:
            return Outcome(TaskStatus.FAILED, error=TaskError(
                type="invalid_result", message=f"result is not JSON-encodable: {e}"))
        limit = self.rt.settings.max_result_bytes
        if len(data) > limit:
            return Outcome(TaskStatus.FAILED, error=TaskError(
                type="result_too_large", message=f"result is {len(data)} bytes, more than "
                f"{limit} (QUANTOPS_EXECUTOR_MAX_RESULT_BYTES): store it in the object store"))
        return Outcome(TaskStatus.SUCCEEDED, result=msgspec.Raw(data))

    def _record(self, run: Run, tm: TaskMessage, status: TaskStatus, max_attempts: int,
                timeout_s: float, out: Outcome | None = None, *, attempts: int | None = None
                ) -> TaskRecord:
        now = time.time()
        final = status in TERMINAL
        return TaskRecord(
            id=run.task_id, type=tm.type, status=status, priority=run.priority,
            attempts=run.attempt if attempts is None else attempts,
            max_attempts=max_attempts, timeout_s=timeout_s,
            submitted_at=tm.submitted_at, started_at=run.started or None,
            finished_at=now if final else None, updated_at=now,
            retry_at=now + out.delay_s if out is not None and out.ack == Ack.NAK else None,
            worker=self.rt.instance, worker_pid=run.worker_pid,
            result=out.result if out is not None else None,
            error=out.error if out is not None else None,
            progress=run.record.progress if run.record and not final else None,
            workflow_id=tm.workflow_id, node=tm.node, parent_id=tm.parent_id,
            idempotency_key=tm.idempotency_key, resubmitted_from=tm.resubmitted_from,
            principal=tm.principal)

    async def _finish(self, run: Run, tm: TaskMessage, out: Outcome, max_attempts: int,
                      timeout_s: float, *, attempts: int | None = None) -> None:
        record = self._record(run, tm, out.status, max_attempts, timeout_s, out,
                              attempts=attempts)
        self._count(run, record, out)
        if out.status == TaskStatus.DEAD or record.workflow_id:
            # Extra durable steps before the ack: the dead letter, the workflow's next nodes.
            await self._finish_slow(run, tm, record, out)
            return
        self.rt.writer.write(run.task_id, out.status, _encode(record),
                             then=lambda: self._settle(run, out))

    async def _finish_slow(self, run: Run, tm: TaskMessage, record: TaskRecord,
                           out: Outcome) -> None:
        try:
            if out.status == TaskStatus.DEAD:
                await self.rt.dead_letters.add(DeadLetter(
                    task_id=run.task_id, priority=run.priority, task=tm, attempts=run.attempt,
                    error=out.error, dead_at=time.time()))
            await self.rt.writer.write_and_wait(run.task_id, out.status, _encode(record))
            if record.workflow_id and record.status in TERMINAL:
                await self.rt.workflows.on_task_finished(record)
        except Exception:
            log.exception("could not finish the task; it will be redelivered",
                          extra={"task_id": run.task_id})
            await self._settle(run, Outcome(TaskStatus.QUEUED, ack=Ack.NAK, delay_s=2.0))
            return
        await self._settle(run, out)

    def _count(self, run: Run, record: TaskRecord, out: Outcome) -> None:
        m = metrics.for_type(record.type if self.rt.registry.find(record.type) else "unknown")
        took = time.time() - run.started if run.started else None
        status = out.status
        if status == TaskStatus.SUCCEEDED:  # the common case first: this runs per task
            m.finish("succeeded", took)
            return
        label = str(status)
        if status == TaskStatus.QUEUED:
            label = "requeued" if out.error and out.error.type == "requeued" else "retried"
        m.finish(label, took)
        if status == TaskStatus.TIMED_OUT:
            metrics.TIMEOUTS.labels(m.type).inc()
        elif label == "retried":
            metrics.RETRIES.labels(m.type).inc()
        elif status == TaskStatus.DEAD:
            metrics.DEAD_LETTERS.labels(m.type).inc()

    def _settle(self, run: Run, out: Outcome) -> Awaitable[None]:
        """Ack or nak the message (its record is durable by now) and free its place."""
        self.rt.release(run)
        msg = run.msg
        if out.ack == Ack.NAK:
            return msg.nak(delay=out.delay_s or None)
        return msg.ack()
