"""The public API of task plugins: everything a package needs to add task types to the executor.

A plugin never imports ``services.executor``. It defines task types with this module and names
them in an entry point of the group ``quantops.tasks`` (or in ``QUANTOPS_EXECUTOR_PLUGINS``)::

    # mypkg/tasks.py
    import msgspec
    from shared.tasks import Reject, Retry, TaskContext, task

    class FitInput(msgspec.Struct, frozen=True):
        dataset_id: str
        alpha: float = 1.0

    def fit(rows: list[list[float]], alpha: float) -> dict:   # runs in a worker process
        ...
        report_progress(0.5, "half way")                     # optional, from the worker
        return {"coef": [...]}

    @task("fit_ridge", input=FitInput, timeout_s=600, max_attempts=3)
    async def fit_ridge(inp: FitInput, ctx: TaskContext) -> dict:
        rows = await load(ctx.bus, inp.dataset_id)           # I/O in the event loop
        if not rows:
            raise Reject("empty dataset")                    # failed, never retried
        model = await ctx.run_in_process(fit, rows, inp.alpha)   # CPU in a worker process
        await ctx.bus.request(...)                           # e.g. register the model
        return model

    TASKS = [fit_ridge]

    # pyproject.toml of mypkg
    [project.entry-points."quantops.tasks"]
    mypkg = "mypkg.tasks:TASKS"

A plugin that also serves request/reply subjects, or needs start/stop hooks (a model cache,
a subscription), exposes ``Plugin(name=..., tasks=[...], endpoints=[Endpoint(subject,
handler, RequestStruct, role="viewer")], start=..., stop=...)`` instead of a list.

Rules a task body relies on:

- ``kind="io"`` (the default): ``async def run(input, ctx) -> result`` runs in the executor's
  event loop; it must not block it (put CPU work in ``ctx.run_in_process``).
- ``kind="cpu"``: ``def run(input) -> result`` runs whole in a worker process. Its function and
  input must be picklable (module-level function, module-level Struct).
- ``ctx.run_in_process(fn, *args)`` runs ``fn`` in the executor's worker pool. The task's timeout
  and cancellation reach it: the worker process is killed (a runaway loop really stops) and
  replaced. Inside ``fn``, ``report_progress(fraction, note)`` updates the task's record.
- Results are JSON (msgspec-encodable: Structs, dicts, lists, numbers, strings) and small
  (``QUANTOPS_EXECUTOR_MAX_RESULT_BYTES``); put large outputs in the object store.
- Raise ``Retry(reason, delay_s=...)`` for a failure worth another attempt (exponential backoff
  unless ``delay_s`` is given; the task goes to the dead-letter stream after ``max_attempts``),
  ``Reject(reason)`` for one that is not. Exceptions listed in ``retry_on`` count as ``Retry``;
  any other exception fails the task without retrying.
- A task may be redelivered (its executor died): write side effects idempotently, e.g. keyed
  by ``ctx.task_id``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

from shared import operations
from shared.errors import ServiceTimeout, ServiceUnavailable
from shared.roles import Role

if TYPE_CHECKING:
    import logging

    from shared.bus import Bus
    from shared.contracts.executor import TaskRecord

InputT = TypeVar("InputT", bound=msgspec.Struct)
T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")


class TaskKind(StrEnum):
    IO = "io"
    CPU = "cpu"


class Retry(Exception):
    """Fail this attempt and try again later.

    Args:
        reason: what went wrong, recorded as the task's error.
        delay_s: wait this long before the next attempt instead of the exponential backoff.
    """

    def __init__(self, reason: str = "", *, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s

    def __reduce__(self) -> tuple[Any, ...]:  # crosses the worker-process pipe intact
        return (_rebuild_retry, (self.reason, self.delay_s))


class Reject(Exception):
    """Fail the task for good: no retry, status ``failed``.

    Args:
        reason: why, recorded as the task's error.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _rebuild_retry(reason: str, delay_s: float | None) -> Retry:
    return Retry(reason, delay_s=delay_s)


class TaskContext(Protocol):
    """What a running task knows and can do (the executor provides the implementation).

    Attributes:
        task_id, type, attempt (1-based), max_attempts, priority: this run.
        workflow_id, node: set when the task is a node of a workflow.
        parent_id: the task that submitted this one as a child, if any.
        bus: the executor's NATS connection: ``await ctx.bus.request(subject, body, Reply,
            headers=ctx.headers())`` to call other services.
        log: a logger whose lines carry the task id.
    """

    task_id: str
    type: str
    attempt: int
    max_attempts: int
    priority: str
    workflow_id: str
    node: str
    parent_id: str
    bus: Bus
    log: logging.LoggerAdapter[logging.Logger]

    def remaining_s(self) -> float:
        """Seconds left before the task's timeout."""
        ...

    def headers(self) -> dict[str, str]:
        """Headers for requests made on this task's behalf (correlation id, principal)."""
        ...

    async def run_in_process(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker process; killed on timeout or cancel."""
        ...

    async def progress(self, fraction: float, note: str = "") -> None:
        """Record progress (0..1) on the task's status record (rate-limited)."""
        ...

    async def submit_child(
        self, type: str, input: Mapping[str, Any] | msgspec.Struct, *,
        priority: str | None = None, timeout_s: float | None = None,
        max_attempts: int | None = None, key: str = "",
    ) -> str:
        """Queue a child task (validated like any submission); returns its id. ``key`` makes
        the submission idempotent across redeliveries of this task (e.g. ``"trial-3"``).
        Children of a cancelled or timed-out task are cancelled with it."""
        ...

    async def wait_children(
        self, task_ids: Sequence[str], *, timeout_s: float | None = None
    ) -> list[TaskRecord]:
        """Wait until every listed task has finished; records in the same order."""
        ...

    async def parent_results(self, *, of_type: str = "") -> dict[str, Any]:
        """In a workflow: each parent node's result by node name (parents all succeeded), as
        the executor recorded it. With ``of_type``, only parents of that task type: a step
        that trusts its parents' output names which tasks may feed it (a ``noop`` parent
        returns whatever its submitter wrote)."""
        ...


IoRun = Callable[[Any, TaskContext], Awaitable[Any]]
CpuRun = Callable[[Any], Any]


@dataclass(frozen=True)
class TaskType(Generic[InputT]):
    """A task type: name, input schema and the function that runs it.

    Args:
        name: what submissions put in ``type`` (letters, digits, ``_.-``; up to 64).
        input: a msgspec Struct; submissions whose input does not decode into it are refused
            before anything is queued.
        run: ``async def (input, ctx)`` for ``kind="io"``; ``def (input)`` for ``kind="cpu"``.
        kind: where ``run`` executes: the event loop (io) or a worker process (cpu).
        description: one line for ``executor.types.list``.
        timeout_s, max_attempts: defaults for this type (a submission may override them).
        retry_on: exception types that count as ``Retry`` (transient service errors by default).
    """

    name: str
    input: type[InputT]
    run: Callable[..., Any]
    kind: TaskKind = TaskKind.IO
    description: str = ""
    timeout_s: float | None = None
    max_attempts: int | None = None
    retry_on: tuple[type[BaseException], ...] = field(
        default=(ServiceUnavailable, ServiceTimeout))

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"task type name {self.name!r} must match {_NAME.pattern}")
        if not (isinstance(self.input, type) and issubclass(self.input, msgspec.Struct)):
            raise TypeError(f"task type {self.name}: input must be a msgspec.Struct subclass")
        is_async = inspect.iscoroutinefunction(self.run)
        if self.kind == TaskKind.IO and not is_async:
            raise TypeError(f"task type {self.name}: an io task's run must be `async def`")
        if self.kind == TaskKind.CPU and is_async:
            raise TypeError(f"task type {self.name}: a cpu task's run must be a plain function")


def task(
    name: str, *, input: type[InputT], kind: TaskKind | str = TaskKind.IO,
    description: str = "", timeout_s: float | None = None, max_attempts: int | None = None,
    retry_on: tuple[type[BaseException], ...] = (ServiceUnavailable, ServiceTimeout),
) -> Callable[[Callable[..., Any]], TaskType[InputT]]:
    """Decorator form of ``TaskType``: ``@task("name", input=Schema)`` over the run function.
    The description defaults to the function's first docstring line."""

    def wrap(fn: Callable[..., Any]) -> TaskType[InputT]:
        doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
        return TaskType(name=name, input=input, run=fn, kind=TaskKind(kind), description=doc,
                        timeout_s=timeout_s, max_attempts=max_attempts, retry_on=retry_on)

    return wrap


@dataclass(frozen=True)
class Endpoint:
    """A request/reply subject a plugin serves from every executor process (through
    ``shared.bus``: decoded, validated, traced, the caller's role checked; errors become error
    replies), e.g. a low-latency prediction subject next to the tasks that train the models.

    Args:
        subject: under ``executor.`` (only the executor may serve there). Declared in
            ``shared.operations`` (then nothing else is needed), or declared here by
            ``request_type`` and ``role`` together.
        handler: ``async def (request, ctx: shared.bus.Context) -> reply Struct``.
        request_type: the msgspec Struct requests decode into (undeclared subjects only).
        role: the least role allowed to call it (undeclared subjects only): no operation
            ships without one.
    """

    subject: str
    handler: Callable[[Any, Any], Awaitable[Any]]
    request_type: type[Any] | None = None
    role: str = ""

    def __post_init__(self) -> None:
        if not self.subject.startswith("executor.") or "*" in self.subject or \
                ">" in self.subject:
            raise ValueError(f"endpoint subject {self.subject!r} must be a literal subject "
                             "under executor.")
        if self.subject not in operations.BY_SUBJECT and (
                self.request_type is None or self.role not in tuple(Role)):
            raise ValueError(f"endpoint {self.subject!r} is not in shared.operations: give "
                             "its request_type and role (viewer, operator or admin)")

    @property
    def operation(self) -> operations.Operation:
        declared = operations.BY_SUBJECT.get(self.subject)
        if declared is not None:
            return declared
        assert self.request_type is not None
        return operations.Operation(self.subject, self.request_type, object, self.role,
                                    "plugin endpoint")


@dataclass(frozen=True)
class Plugin:
    """Everything one plugin brings: task types, endpoints, and start/stop hooks (caches,
    subscriptions) run once per executor process around them. An entry point may name a
    ``Plugin`` instead of a list of task types.

    Args:
        name: for logs and health.
        tasks: task types.
        endpoints: request/reply subjects served by every executor process.
        start: ``async def (bus)`` before the endpoints are served and tasks run.
        stop: ``async def ()`` when the executor stops.
    """

    name: str
    tasks: Sequence[TaskType[Any]] = ()
    endpoints: Sequence[Endpoint] = ()
    start: Callable[[Bus], Awaitable[None]] | None = None
    stop: Callable[[], Awaitable[None]] | None = None


# Set by the executor in each worker process: where report_progress sends its updates.
_progress_sink: Callable[[float, str], None] | None = None


def report_progress(fraction: float, note: str = "") -> None:
    """From code running in a worker process (a cpu task, or ``ctx.run_in_process``): record
    progress on the task. A no-op anywhere else, so the same code runs in plain scripts."""
    if _progress_sink is not None:
        _progress_sink(min(1.0, max(0.0, float(fraction))), note)


def _install_progress_sink(sink: Callable[[float, str], None] | None) -> None:
    """Executor internals only: route ``report_progress`` of this process."""
    global _progress_sink
    _progress_sink = sink


async def checkpoint() -> None:
    """Yield to the event loop: a long io task calls this between steps so cancellation and
    timeouts can reach it."""
    await asyncio.sleep(0)
