"""The ``TaskContext`` a running task receives (the protocol lives in ``shared.tasks``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import Priority, SubmitTask, TaskMessage, TaskRecord
from shared.logs import swallowed
from shared.subjects import Header

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from services.executor.runtime.runner import Run, Runtime

log = logging.getLogger("quantops.task")
T = TypeVar("T")

PROGRESS_INTERVAL_S = 1.0


class RunContext:
    """One attempt's view of the executor. See ``shared.tasks.TaskContext`` for the contract."""

    def __init__(self, rt: Runtime, run: Run, tm: TaskMessage, max_attempts: int) -> None:
        self._rt = rt
        self._run = run
        self._tm = tm
        self.task_id = run.task_id
        self.type = tm.type
        self.attempt = run.attempt
        self.max_attempts = max_attempts
        self.priority = str(run.priority)
        self.workflow_id = tm.workflow_id
        self.node = tm.node
        self.parent_id = tm.parent_id
        self.bus: Bus = rt.bus
        self.children: list[str] = []
        self._log: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        if self._log is None:  # built on first use: most tasks never log
            self._log = logging.LoggerAdapter(log, {"task_id": self.task_id,
                                                    "task_type": self.type})
        return self._log

    def remaining_s(self) -> float:
        deadline = self._run.deadline
        return max(0.0, deadline - time.monotonic()) if deadline is not None else float("inf")

    def headers(self) -> dict[str, str]:
        """The submitter's principal and a bus token with the submitter's role: whatever the
        task does on the registry or state, it does with that role, never the executor's."""
        out = {Header.CORRELATION_ID.value: self._run.correlation_id or self.task_id}
        if self._tm.principal:
            out[Header.PRINCIPAL.value] = self._tm.principal
        if self._tm.principal and self._tm.role:
            out[Header.ROLE.value] = self._tm.role
            if token := self.bus.token_for(self._tm.principal, self._tm.role):
                out[Header.AUTH.value] = token
        return out

    async def run_in_process(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        def on_start(pid: int) -> None:
            self._run.worker_pid = pid
            self._rt.note_worker(self._run)

        def on_progress(fraction: float, note: str) -> None:
            self._rt.note_progress(self._run, fraction, note, force=False)

        return await self._rt.pool.run(fn, args, kwargs, on_progress=on_progress,
                                       on_start=on_start)

    async def progress(self, fraction: float, note: str = "") -> None:
        self._rt.note_progress(self._run, min(1.0, max(0.0, fraction)), note, force=False)

    async def submit_child(
        self, type: str, input: Mapping[str, Any] | msgspec.Struct, *,
        priority: str | None = None, timeout_s: float | None = None,
        max_attempts: int | None = None, key: str = "",
    ) -> str:
        body = msgspec.to_builtins(input) if isinstance(input, msgspec.Struct) else dict(input)
        req = SubmitTask(type=type, input=body, priority=Priority(priority or self.priority),
                         timeout_s=timeout_s, max_attempts=max_attempts,
                         idempotency_key=f"{self.task_id}/{key}" if key else "",
                         parent_id=self.task_id)
        reply = await self._rt.submitter.submit(req, principal=self._tm.principal,
                                                role=self._tm.role, headers=self.headers())
        self.children.append(reply.task_id)
        return reply.task_id

    async def wait_children(self, task_ids: Sequence[str], *,
                            timeout_s: float | None = None) -> list[TaskRecord]:
        client = ExecutorClient(self.bus)
        limit = min(timeout_s or float("inf"), self.remaining_s())
        return await client.wait_many(list(task_ids),
                                      timeout_s=None if limit == float("inf") else limit)

    async def parent_results(self, *, of_type: str = "") -> dict[str, Any]:
        names = list(self._tm.parents)
        records = await asyncio.gather(*(self._rt.store.get(self._tm.parents[n]) for n in names))
        return {n: (r.result if r is not None else None)
                for n, r in zip(names, records, strict=True)
                if not of_type or (r is not None and r.type == of_type)}

    async def cancel_children(self, reason: str) -> None:
        """The parent stopped: its unfinished children go with it (best effort)."""
        client = ExecutorClient(self.bus, headers=self.headers())
        for child in self.children:
            with swallowed(log, "cancelling a child task"):
                await client.cancel(child, reason=reason)
