"""The subject catalog: every NATS subject quantops serves or publishes, with its Structs.

``shared.subjects`` names the subjects; this module says what travels on each: the request
and reply Struct of every request/reply subject (as the services' handlers decode and return
them), and the payload of every published subject, stream and bucket. The AsyncAPI document
(``shared.asyncapi``) and ``docs/subjects.md`` are generated from it:

    python -m shared.subject_catalog --write-docs      # docs/asyncapi.json and docs/subjects.md
    python -m shared.subject_catalog --check           # exit 1 if the committed docs are stale

A test fails when a member of a ``<Service>Subject`` enum is missing here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared import subjects
from shared.contracts import datasets as ds
from shared.contracts import executor as ex
from shared.contracts import live as lv
from shared.contracts import quant as qu
from shared.contracts import registry as reg
from shared.contracts import state as st
from shared.contracts.base import Empty, HealthReply
from shared.subjects import SERVICES, Bucket, DatasetEvent, ModelEvent, Stream, health
from shared.subjects import DatasetSubject as D
from shared.subjects import ExecutorSubject as E
from shared.subjects import LiveSubject as L
from shared.subjects import QuantSubject as Q
from shared.subjects import RegistrySubject as R
from shared.subjects import StateSubject as S


@dataclass(frozen=True)
class Operation:
    """A request/reply subject: served in the queue group ``service``."""

    subject: str
    request: type[Any]
    reply: type[Any]
    summary: str

    @property
    def service(self) -> str:
        return self.subject.split(".", 1)[0]

    @property
    def queue_group(self) -> str:
        """Health is answered by every instance (no queue group); the rest by one of them."""
        return "" if self.subject.endswith(".health") else self.service


@dataclass(frozen=True)
class Publication:
    """A subject facts are published on; ``{name}`` marks a token that varies."""

    subject: str
    payload: type[Any] | None  # None: the bytes of a stored value (state changes)
    summary: str
    stream: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


OPERATIONS: tuple[Operation, ...] = (
    *(Operation(health(s), Empty, HealthReply, f"Health of a {s} instance (every instance "
                "answers: gather replies to count them)") for s in SERVICES),
    Operation(S.PUT, st.PutRequest, st.PutReply,
              "Write a key; expected_revision makes it compare-and-set (0: create)"),
    Operation(S.GET, st.GetRequest, st.GetReply, "Read a key, latest or at a revision"),
    Operation(S.DELETE, st.DeleteRequest, st.DeleteReply,
              "Delete a key (a tombstone in its history)"),
    Operation(S.LIST, st.ListRequest, st.ListReply, "Keys of a namespace, paged by cursor"),
    Operation(S.HISTORY, st.HistoryRequest, st.HistoryReply,
              "Last revisions of a key, newest first"),
    Operation(S.NAMESPACES, st.NamespacesRequest, st.NamespacesReply,
              "Namespaces (or one) with configuration and usage"),
    Operation(S.CONFIGURE, st.ConfigureRequest, st.NamespaceInfo,
              "Declare a namespace's schema version and limits"),
    Operation(S.CLEANUP, st.CleanupRequest, st.CleanupReply,
              "Delete keys not written for older_than_s seconds"),
    Operation(S.SNAPSHOT, st.SnapshotRequest, st.SnapshotInfo,
              "Snapshot a namespace (or all) into one checksummed object"),
    Operation(S.SNAPSHOTS, Empty, st.SnapshotsReply, "List snapshots"),
    Operation(S.RESTORE, st.RestoreRequest, st.RestoreReply,
              "Restore a snapshot (all or one namespace); never half-applies"),
    Operation(R.REGISTER, reg.RegisterVersion, reg.VersionInfo,
              "Register a version with a small artifact inline (base64, at most 1 MiB)"),
    Operation(R.GET, reg.VersionRequest, reg.VersionInfo,
              "One version by ref (name@3, name@production, name@latest)"),
    Operation(R.LIST, reg.ListVersions, reg.VersionPage,
              "Versions filtered by metrics, tags and dates, sorted, paged"),
    Operation(R.COMPARE, reg.CompareVersions, reg.Comparison,
              "Compare versions metric by metric, with deltas and winners"),
    Operation(R.DELETE, reg.DeleteVersion, reg.DeleteReply,
              "Delete a version (refused while an alias points to it)"),
    Operation(R.CLEANUP, reg.Cleanup, reg.CleanupReply,
              "Keep the N newest versions and every aliased one; delete the rest"),
    Operation(R.UPLOAD_BEGIN, reg.BeginUpload, reg.UploadTicket,
              "Begin registering any size: where to put the bytes in the object store"),
    Operation(R.UPLOAD_GET, reg.UploadRequest, reg.UploadTicket, "An open upload's ticket"),
    Operation(R.UPLOAD_COMMIT, reg.CommitUpload, reg.VersionInfo,
              "Verify the uploaded bytes (SHA-256, size) and commit the version"),
    Operation(R.UPLOAD_ABORT, reg.UploadRequest, Empty, "Abandon an upload"),
    Operation(R.MODELS_LIST, reg.ListModels, reg.ModelPage,
              "Models with version counts and aliases, paged"),
    Operation(R.ALIAS_SET, reg.SetAlias, reg.AliasChange, "Point an alias at a version"),
    Operation(R.ALIAS_DELETE, reg.DeleteAlias, reg.AliasChange, "Remove an alias"),
    Operation(R.ALIAS_LIST, reg.ModelRequest, reg.AliasList, "A model's aliases"),
    Operation(R.PROMOTE, reg.Promote, reg.AliasChange,
              "Move 'production' to a version (audited)"),
    Operation(R.ROLLBACK, reg.Rollback, reg.AliasChange,
              "Move an alias back to where it pointed before (audited)"),
    Operation(R.AUDIT, reg.ListAudit, reg.AuditPage,
              "Audit log: who moved which alias, when, from, to, why"),
    Operation(E.SUBMIT, ex.SubmitTask, ex.SubmitReply,
              "Submit a task, validated against its type's input schema"),
    Operation(E.GET, ex.GetTask, ex.TaskRecord, "One task's status record"),
    Operation(E.LIST, ex.ListTasks, ex.TaskPage,
              "Tasks filtered by status, type, workflow and time, newest first"),
    Operation(E.CANCEL, ex.CancelTask, ex.CancelReply, "Cancel a queued or running task"),
    Operation(E.FAILED_SUMMARY, ex.FailedSummaryRequest, ex.FailedSummary,
              "Failed, timed-out and dead tasks over a window, by type and error"),
    Operation(E.PURGE, ex.PurgeTasks, ex.PurgeReply, "Delete old finished task records"),
    Operation(E.DEAD_LIST, ex.ListDead, ex.DeadPage, "Dead letters, newest first"),
    Operation(E.DEAD_RESUBMIT, ex.ResubmitDead, ex.ResubmitReply,
              "Queue a dead task again as a new task"),
    Operation(E.WORKFLOW_SUBMIT, ex.SubmitWorkflow, ex.WorkflowReply,
              "Submit a DAG of tasks"),
    Operation(E.WORKFLOW_GET, ex.GetWorkflow, ex.WorkflowRecord,
              "A workflow's status and each node's"),
    Operation(E.WORKFLOW_CANCEL, ex.CancelWorkflow, ex.WorkflowRecord,
              "Cancel a workflow: pending nodes never start, running ones stop"),
    Operation(E.TYPES, Empty, ex.TaskTypes, "Registered task types with input schemas"),
    Operation(D.BEGIN, ds.BeginDatasetUpload, ds.DatasetTicket,
              "Begin a dataset upload (CSV or Parquet): where to put the bytes"),
    Operation(D.COMMIT, ds.CommitDatasetUpload, ds.DatasetInfo,
              "Verify, parse and validate the uploaded file; same bytes, same dataset"),
    Operation(D.ABORT, ds.DatasetUploadRequest, Empty, "Abandon a dataset upload"),
    Operation(D.GET, ds.DatasetRequest, ds.DatasetInfo,
              "A dataset by name or sha256:<hex>, with its validation report"),
    Operation(D.LIST, ds.ListDatasets, ds.DatasetPage, "Datasets by name, paged"),
    Operation(D.SEED_DEMO, ds.SeedDemo, ds.DatasetInfo,
              "Register the bundled real demo prices (idempotent)"),
    Operation(Q.PREDICT, qu.PredictRequest, qu.PredictReply,
              "Score a model (any ref) on the latest bar per symbol; cached, hot-swapped"),
    Operation(Q.TRIALS, qu.TrialsRequest, qu.TrialsReply,
              "Trial history of a task type: trend, parameter effects, recommendation"),
    Operation(Q.TEMPLATES, Empty, qu.TemplatesReply, "The shipped pipeline templates"),
    Operation(L.START, lv.StartRequest, lv.StrategyStatus,
              "Store a live strategy and run it (idempotent; operator)"),
    Operation(L.STOP, lv.StrategyRequest, lv.StrategyStatus,
              "Stop a strategy's runner, positions kept (operator)"),
    Operation(L.KILL, lv.StrategyRequest, lv.StrategyStatus,
              "Kill switch: flatten every position and stop (operator)"),
    Operation(L.STATUS, lv.StrategyRequest, lv.StrategyStatus,
              "A strategy's positions, cash, P&L, risk state and latest fills"),
    Operation(L.LIST, Empty, lv.StrategyList, "Every strategy's status"),
)

_TASK_ID = {"task_id": "the task's id"}
PUBLICATIONS: tuple[Publication, ...] = (
    Publication("tasks.queue.{priority}.{task_id}", ex.TaskMessage,
                "A task waiting to run (work queue; Nats-Msg-Id is the idempotency key)",
                Stream.TASKS, {"priority": "high, normal or low", **_TASK_ID},
                {"Nats-Msg-Id": "idempotency key or task id"}),
    Publication("tasks.dead.{task_id}", ex.DeadLetter,
                "A task that exhausted its attempts, with its last error", Stream.TASKS_DEAD,
                _TASK_ID),
    Publication("events.task.{status}.{task_id}", ex.TaskRecord,
                "Every recorded status change of a task", Stream.EVENTS,
                {"status": "queued, running, succeeded, failed, timed_out, cancelled, dead",
                 **_TASK_ID}),
    Publication("events.task.cancel_requested.{task_id}", ex.CancelRequested,
                "Cancellation request every executor acts on", Stream.EVENTS, _TASK_ID),
    Publication("events.workflow.{status}.{workflow_id}", ex.WorkflowRecord,
                "Every status change of a workflow", Stream.EVENTS,
                {"status": "running, succeeded, failed, cancelled",
                 "workflow_id": "the workflow's id"}),
    *(Publication(str(e), reg.RegistryEvent, f"Registry fact: {e.name.lower()}", Stream.EVENTS,
                  headers={"Nats-Msg-Id": "the event id"}) for e in ModelEvent),
    Publication(DatasetEvent.NAMED, ds.DatasetEvent, "A dataset name now points to a file",
                Stream.EVENTS, headers={"Nats-Msg-Id": "the event id"}),
    Publication(f"{subjects.BARS_PREFIX}.{{symbol}}", qu.Bar,
                "A market-data bar; JetStream drops a re-sent one (same symbol and timestamp)",
                Stream.BARS, {"symbol": "the instrument (letters, digits, _ and -)"},
                {"Nats-Msg-Id": "<symbol>@<ISO timestamp>", "traceparent": "the bar's trace"}),
    Publication(f"{subjects.LIVE_FILL_EVENTS}.{{strategy}}", lv.FillEvent,
                "A paper fill of a live strategy (once per strategy, bar and symbol)",
                Stream.EVENTS, {"strategy": "the strategy's name"},
                {"Nats-Msg-Id": "fill:<strategy>:<timestamp>:<symbol>"}),
    Publication(f"{subjects.LIVE_RISK_EVENTS}.{{strategy}}", lv.BreachEvent,
                "A risk limit that acted on a live strategy (kill: the kill switch tripped)",
                Stream.EVENTS, {"strategy": "the strategy's name"},
                {"Nats-Msg-Id": "risk:<strategy>:<timestamp>:<limit>:<symbol>"}),
    Publication(f"{subjects.STATE_CHANGES_PREFIX}.{{namespace}}.{{key}}", None,
                "Every committed change of a state key, republished by JetStream (core NATS: "
                "not replayed); the body is the stored JSON document", "",
                {"namespace": "the namespace", "key": "the key (may contain dots)"},
                {"Nats-Sequence": "the revision", "KV-Operation": "DEL or PURGE on deletes",
                 "Quantops-Schema": "schema version of the document (absent: 1)",
                 "Quantops-Encoding": "zlib when the body is compressed"}),
)

#: Streams and buckets: (what they hold, the subjects they capture).
STREAMS: dict[str, tuple[str, str]] = {
    Stream.TASKS: ("work queue of tasks, one consumer per priority",
                   f"{subjects.TASK_QUEUE_PREFIX}.<priority>.<task_id>"),
    Stream.TASKS_DEAD: ("dead letters", f"{subjects.DEAD_LETTER_PREFIX}.<task_id>"),
    Stream.EVENTS: ("facts for anyone to consume (limits retention)",
                    f"{subjects.EVENTS_PREFIX}.>"),
    Stream.BARS: ("market data, deduplicated by symbol and timestamp (limits retention)",
                  f"{subjects.BARS_PREFIX}.<symbol>"),
}
BUCKETS: dict[str, str] = {
    Bucket.STATE: "KV: every state key (<namespace>.<key>), history per key",
    Bucket.STATE_SNAPSHOTS: "object store: state snapshots, one object each",
    Bucket.TASK_STATUS: "KV: task status records (TaskRecord)",
    Bucket.WORKFLOWS: "KV: workflow records (WorkflowRecord)",
    Bucket.ARTIFACTS: "object store: model artifacts (SHA-256 checked on load)",
    Bucket.DATASETS: "object store: dataset files (CSV/Parquet, SHA-256 addressed)",
    Bucket.AUTH: "KV: the gateway's users, API key hashes and sessions (`users.<name>`, "
                 "`keys.<key_id>`, `refresh.<token_id>`, `sessions.<session>`)",
}


def subject_enums() -> Iterator[type[enum.StrEnum]]:
    """Every ``<Service>Subject`` enum of ``shared.subjects``: the request/reply surface."""
    for name in sorted(dir(subjects)):
        obj = getattr(subjects, name)
        if (isinstance(obj, type) and issubclass(obj, enum.StrEnum) and name.endswith("Subject")
                and name != "Subject"):
            yield obj


def missing_subjects() -> list[str]:
    """Enum members that have no ``Operation`` here (a test keeps this empty)."""
    known = {op.subject for op in OPERATIONS}
    return sorted(str(m) for e in subject_enums() for m in e if str(m) not in known)


if __name__ == "__main__":
    from shared.asyncapi import main

    raise SystemExit(main())
