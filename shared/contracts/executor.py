"""Wire contracts of the executor: task messages, status records, workflows, dead letters.

Subjects (docs/executor.md has the catalog with examples):

- ``tasks.queue.<priority>.<task_id>``: a task waiting to run, body ``TaskMessage``, on the
  work-queue stream ``QUANTOPS_TASKS``. Anyone may publish here directly with JetStream;
  ``Nats-Msg-Id`` is the idempotency key (or the task id).
- ``tasks.dead.<task_id>``: a task that exhausted its attempts, body ``DeadLetter``, on
  ``QUANTOPS_TASKS_DEAD``.
- ``events.task.<status>.<task_id>``: every recorded status change, body ``TaskRecord``.
- ``events.task.cancel_requested.<task_id>``: body ``CancelRequested``; every executor listens.
- ``events.workflow.<status>.<workflow_id>``: body ``WorkflowRecord``.
- ``executor.*``: request/reply, see ``shared.subjects.ExecutorSubject``.
"""

from __future__ import annotations

import hashlib
import os
import time
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec

from shared.contracts.base import Message
from shared.contracts.bounds import MAX_SECONDS, Cursor, FloatSeconds, Name, PageLimit
from shared.contracts.page import Page

# Subject names live in shared.subjects; re-exported here (explicitly: `X as X`) for the
# executor's callers.
from shared.subjects import (
    CANCEL_REQUESTED as CANCEL_REQUESTED,
)
from shared.subjects import (
    DEAD_LETTER_PREFIX as DEAD_LETTER_PREFIX,
)
from shared.subjects import (
    TASK_EVENTS as TASK_EVENTS,
)
from shared.subjects import (
    WORKFLOW_EVENTS as WORKFLOW_EVENTS,
)
from shared.subjects import (
    dead_letter_subject as dead_letter_subject,
)
from shared.subjects import (
    queue_subject as queue_subject,
)
from shared.subjects import (
    task_event_subject as task_event_subject,
)
from shared.subjects import (
    workflow_event_subject as workflow_event_subject,
)


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


#: Highest first: the order the scheduler considers them in.
PRIORITIES: Final = (Priority.HIGH, Priority.NORMAL, Priority.LOW)


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DEAD = "dead"


TERMINAL: Final = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT,
                             TaskStatus.CANCELLED, TaskStatus.DEAD})
#: Terminal statuses that count as a failure in summaries and workflows.
FAILURES: Final = frozenset({TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.DEAD})


class OnFailure(StrEnum):
    """What a workflow does with the descendants of a node that did not succeed."""

    FAIL = "fail"
    CANCEL = "cancel"


class WorkflowStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Task and workflow ids are subject tokens and KV keys: no dots, no wildcards.
TaskId = Annotated[str, msgspec.Meta(max_length=128, pattern=r"^[A-Za-z0-9_-]{1,128}\Z")]
TypeName = Annotated[str, msgspec.Meta(max_length=64,
                                        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")]
NodeName = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}\Z")]
#: A task's input: any JSON object (its type's schema checks it), at most this many fields.
TaskInput = Annotated[dict[Name, Any], msgspec.Meta(max_length=1000)]
Statuses = Annotated[list["TaskStatus"], msgspec.Meta(max_length=16)]
#: Unix time in seconds, from 1970 to the year 5138.
EpochSeconds = Annotated[float, msgspec.Meta(ge=0, le=1e11)]
TimeoutS = Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 3600)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
BackoffS = Annotated[float, msgspec.Meta(ge=0, le=24 * 3600)]
IdempotencyKey = Annotated[str, msgspec.Meta(max_length=256)]




def new_id(prefix: str = "t") -> str:
    """Time-ordered id: prefix, 12 hex digits of milliseconds, 12 random hex digits."""
    return f"{prefix}{int(time.time() * 1000):012x}{os.urandom(6).hex()}"


def id_for_key(key: str, prefix: str = "k") -> str:
    """The task id an idempotency key always maps to, so a resubmission finds the same task."""
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:32]


class TaskError(Message, frozen=True):
    """Why a task did not succeed.

    Args:
        type: the exception class name, or ``timeout``, ``cancelled``, ``invalid_input``...
        retryable: whether the executor would (or did) try again.
    """

    type: str
    message: str
    retryable: bool = False
    traceback: str = ""


class TaskMessage(Message, frozen=True):
    """Body of ``tasks.queue.<priority>.<task_id>``: what to run. ``input`` is the JSON object
    the task type's input schema decodes; unset limits fall back to the type, then settings."""

    type: str
    input: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))
    timeout_s: TimeoutS | None = None
    max_attempts: Attempts | None = None
    backoff_s: BackoffS | None = None
    submitted_at: float = 0.0
    idempotency_key: IdempotencyKey = ""
    parent_id: Name = ""
    workflow_id: Name = ""
    node: str = ""
    parents: dict[str, str] = {}
    resubmitted_from: str = ""
    principal: str = ""
    # The submitter's role, from its verified bus token: the task acts with it, never more.
    role: str = ""


class TaskRecord(Message, frozen=True):
    """The status record of one task, as stored in the KV bucket and sent in events."""

    id: str
    type: str
    status: TaskStatus
    priority: Priority = Priority.NORMAL
    attempts: int = 0
    max_attempts: int = 1
    timeout_s: float = 0.0
    submitted_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float = 0.0
    retry_at: float | None = None
    worker: str = ""
    worker_pid: int | None = None
    result: Any = None
    error: TaskError | None = None
    progress: float | None = None
    progress_note: str = ""
    workflow_id: Name = ""
    node: str = ""
    parent_id: Name = ""
    idempotency_key: str = ""
    resubmitted_from: str = ""
    principal: str = ""


class SubmitTask(Message, frozen=True):
    """``executor.tasks.submit``: validated against the type's input schema before queueing."""

    type: TypeName
    input: TaskInput = {}
    priority: Priority = Priority.NORMAL
    timeout_s: TimeoutS | None = None
    max_attempts: Attempts | None = None
    backoff_s: BackoffS | None = None
    idempotency_key: IdempotencyKey = ""
    parent_id: Name = ""


class SubmitReply(Message, frozen=True):
    task_id: str
    status: TaskStatus
    priority: Priority = Priority.NORMAL
    duplicate: bool = False


class GetTask(Message, frozen=True):
    task_id: TaskId


class ListTasks(Message, frozen=True):
    """Filters are ANDed; ``since``/``until`` bound ``submitted_at`` (epoch seconds). Without
    ``since``, the executor's ``list_window_s`` (a day by default) bounds it: a listing costs
    its window, never every record kept."""

    status: Statuses = []
    type: Name = ""
    since: EpochSeconds | None = None
    until: EpochSeconds | None = None
    workflow_id: Name = ""
    limit: PageLimit = 100
    cursor: Cursor = ""


class TaskPage(Page[TaskRecord], frozen=True, kw_only=True):
    """``total`` counts every match in the window read: since ``since``, or without it the
    executor's ``list_window_s``. ``scanned``: the status records read to answer."""

    total: int
    scanned: int = 0


class CancelTask(Message, frozen=True):
    task_id: TaskId
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class CancelReply(Message, frozen=True):
    """``cancelled`` is false when the task had already finished (``record`` says how)."""

    task_id: str
    cancelled: bool
    record: TaskRecord | None = None


class CancelRequested(Message, frozen=True):
    """Event every executor acts on: drop the task if it holds it, stop it if it runs it."""

    task_id: str
    reason: str = ""
    at: float = 0.0


class FailedSummaryRequest(Message, frozen=True):
    window_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_SECONDS)] = 3600.0


class FailureGroup(Message, frozen=True):
    type: str
    error_type: str
    count: int
    last_at: float
    last_message: str = ""
    sample_task_id: str = ""


class FailedSummary(Message, frozen=True):
    since: float
    until: float
    total: int
    by_type: dict[str, int] = {}
    by_error: dict[str, int] = {}
    groups: list[FailureGroup] = []


class ActivityRequest(Message, frozen=True):
    """``executor.tasks.activity``: ``window_s`` back from now in buckets of ``bucket_s``
    (at most 1,000 buckets)."""

    window_s: Annotated[float, msgspec.Meta(gt=0, le=7 * 86400)] = 3600.0
    bucket_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0


class ActivityBucket(Message, frozen=True):
    """One bucket ``[start, start + bucket_s)``: tasks submitted, started and finished in it
    (finished by final status), and the queue depth and tasks running at its end."""

    start: float
    submitted: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    queued: int = 0
    running: int = 0


class TaskActivity(Message, frozen=True):
    """Throughput and queue depth over time, from the task records the executor keeps (a
    purged record no longer counts). A retried task counts from its latest start."""

    since: float
    until: float
    bucket_s: float
    buckets: list[ActivityBucket] = []
    scanned: int = 0  # status records read: those written in the window, and unfinished ones


class PriorityDepth(Message, frozen=True):
    """One priority's queue: ``queued`` tasks not yet handed to an executor, ``in_flight``
    handed out and not yet finished (running, or waiting for a redelivery)."""

    priority: Priority
    queued: int = 0
    in_flight: int = 0


class QueueDepth(Message, frozen=True):
    """``executor.tasks.queue``: the queue now, read from JetStream's consumer counters
    (``num_pending``, ``num_ack_pending``), so its cost does not grow with the records kept."""

    priorities: list[PriorityDepth] = []
    queued: int = 0
    in_flight: int = 0


class PurgeTasks(Message, frozen=True):
    """Delete finished records older than ``older_than_s`` (by finish time). No default age:
    purging is always explicit."""

    older_than_s: FloatSeconds
    status: Statuses = []


class PurgeReply(Message, frozen=True):
    purged: int
    scanned: int


class DeadLetter(Message, frozen=True):
    """Body of ``tasks.dead.<task_id>``: the task as submitted, and why it died."""

    task_id: str
    priority: Priority
    task: TaskMessage
    attempts: int
    error: TaskError | None = None
    dead_at: float = 0.0


class ListDead(Message, frozen=True):
    type: Name = ""
    limit: PageLimit = 100
    cursor: Cursor = ""


class DeadPage(Page[DeadLetter], frozen=True, kw_only=True):
    total: int


class ResubmitDead(Message, frozen=True):
    task_id: TaskId
    priority: Priority | None = None


class ResubmitReply(Message, frozen=True):
    task_id: str
    resubmitted_from: str


class WorkflowTask(Message, frozen=True):
    """One node of a workflow DAG; ``depends_on`` names other nodes of the same workflow."""

    name: NodeName
    type: TypeName
    input: TaskInput = {}
    depends_on: Annotated[list[NodeName], msgspec.Meta(max_length=1000)] = []
    priority: Priority = Priority.NORMAL
    timeout_s: TimeoutS | None = None
    max_attempts: Attempts | None = None
    backoff_s: BackoffS | None = None


class SubmitWorkflow(Message, frozen=True):
    tasks: Annotated[list[WorkflowTask], msgspec.Meta(min_length=1, max_length=1000)]
    on_failure: OnFailure = OnFailure.FAIL
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    idempotency_key: IdempotencyKey = ""


class NodeState(Message, frozen=True):
    """A workflow node: ``status`` is ``pending`` until its task is queued, then the task's."""

    name: str
    task_id: str
    spec: WorkflowTask
    status: str = "pending"
    error: str = ""


class WorkflowRecord(Message, frozen=True):
    id: str
    status: WorkflowStatus
    on_failure: OnFailure
    nodes: list[NodeState]
    name: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    principal: str = ""
    role: str = ""  # the submitter's role: every node runs with it
    # W3C trace context of the submission: every node's run joins the submitter's trace.
    trace: dict[str, str] = {}


class WorkflowReply(Message, frozen=True):
    workflow: WorkflowRecord
    duplicate: bool = False


class GetWorkflow(Message, frozen=True):
    workflow_id: TaskId


class CancelWorkflow(Message, frozen=True):
    workflow_id: TaskId
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class TaskTypeInfo(Message, frozen=True):
    name: str
    kind: str
    description: str = ""
    input_schema: dict[str, Any] = {}
    timeout_s: float | None = None
    max_attempts: int | None = None


class TaskTypes(Message, frozen=True):
    items: list[TaskTypeInfo]
    errors: list[str] = []
