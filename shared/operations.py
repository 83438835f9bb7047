"""Every request/reply operation quantops serves, declared once: subject, request and reply
Structs, the least role allowed to call it, and a summary.

Everything else is derived from this table: ``Bus.serve_operations`` decodes each request into
its Struct and refuses a caller below the role before the handler runs; the subject catalog
(``shared.subject_catalog``: docs/subjects.md, AsyncAPI) documents it; the NATS permissions
(``shared.natsauth``) grant each caller exactly the subjects of the services it calls. A service
binds a handler to each of its operations (``handlers.py``); serving fails at start when an
operation is left unbound or a handler names a subject not declared here, and a test says so.
An operation cannot be written without a role: the field has no default.

Roles are the HTTP roles (``shared.roles``). An operation may refine inside its handler (a
prediction that writes signals needs ``operator``; moving ``production`` needs ``admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contracts import datasets as ds
from shared.contracts import executor as ex
from shared.contracts import live as lv
from shared.contracts import quant as qu
from shared.contracts import registry as reg
from shared.contracts import state as st
from shared.contracts.base import Empty, HealthReply
from shared.roles import PUBLIC, Role
from shared.subjects import SERVICES, health
from shared.subjects import DatasetSubject as D
from shared.subjects import ExecutorSubject as E
from shared.subjects import LiveSubject as L
from shared.subjects import QuantSubject as Q
from shared.subjects import RegistrySubject as R
from shared.subjects import StateSubject as S

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN


@dataclass(frozen=True)
class Operation:
    """A request/reply subject: served in the queue group ``service``.

    Args:
        subject: the NATS subject (``<service>.<resource>.<verb>``).
        request, reply: the Structs on the wire.
        role: the least role allowed (``shared.roles``; ``PUBLIC`` for health only).
        summary: one line for the catalog.
    """

    subject: str
    request: type[Any]
    reply: type[Any]
    role: str
    summary: str

    @property
    def service(self) -> str:
        return self.subject.split(".", 1)[0]

    @property
    def queue_group(self) -> str:
        """Health is answered by every instance (no queue group); the rest by one of them."""
        return "" if self.subject.endswith(".health") else self.service


OPERATIONS: tuple[Operation, ...] = (
    *(Operation(health(s), Empty, HealthReply, PUBLIC, f"Health of a {s} instance (every instance "
                "answers: gather replies to count them)") for s in SERVICES),
    Operation(S.PUT, st.PutRequest, st.PutReply, OP,
              "Write a key; expected_revision makes it compare-and-set (0: create)"),
    Operation(S.GET, st.GetRequest, st.GetReply, V, "Read a key, latest or at a revision"),
    Operation(S.DELETE, st.DeleteRequest, st.DeleteReply, OP,
              "Delete a key (a tombstone in its history)"),
    Operation(S.LIST, st.ListRequest, st.ListReply, V, "Keys of a namespace, paged by cursor"),
    Operation(S.HISTORY, st.HistoryRequest, st.HistoryReply, V,
              "Last revisions of a key, newest first"),
    Operation(S.NAMESPACES, st.NamespacesRequest, st.NamespacesReply, V,
              "Namespaces (or one) with configuration and usage"),
    Operation(S.CONFIGURE, st.ConfigureRequest, st.NamespaceInfo, A,
              "Declare a namespace's schema version and limits"),
    Operation(S.CLEANUP, st.CleanupRequest, st.CleanupReply, A,
              "Delete keys not written for older_than_s seconds"),
    Operation(S.SNAPSHOT, st.SnapshotRequest, st.SnapshotInfo, A,
              "Snapshot a namespace (or all) into one checksummed object"),
    Operation(S.SNAPSHOTS, Empty, st.SnapshotsReply, V, "List snapshots"),
    Operation(S.RESTORE, st.RestoreRequest, st.RestoreReply, A,
              "Restore a snapshot (all or one namespace); never half-applies"),
    Operation(S.IMPORT, st.ImportSnapshot, st.SnapshotInfo, A,
              "Store a snapshot file staged by the caller, checked against its SHA-256"),
    Operation(R.REGISTER, reg.RegisterVersion, reg.VersionInfo, OP,
              "Register a version with a small artifact inline (base64, at most 1 MiB)"),
    Operation(R.GET, reg.VersionRequest, reg.VersionInfo, V,
              "One version by ref (name@3, name@production, name@latest)"),
    Operation(R.LIST, reg.ListVersions, reg.VersionPage, V,
              "Versions filtered by metrics, tags and dates, sorted, paged"),
    Operation(R.COMPARE, reg.CompareVersions, reg.Comparison, V,
              "Compare versions metric by metric, with deltas and winners"),
    Operation(R.DELETE, reg.DeleteVersion, reg.DeleteReply, A,
              "Delete a version (refused while an alias points to it)"),
    Operation(R.CLEANUP, reg.Cleanup, reg.CleanupReply, A,
              "Keep the N newest versions and every aliased one; delete the rest"),
    Operation(R.UPLOAD_BEGIN, reg.BeginUpload, reg.UploadTicket, OP,
              "Begin registering any size: where to put the bytes in the object store"),
    Operation(R.UPLOAD_GET, reg.UploadRequest, reg.UploadTicket, OP, "An open upload's ticket"),
    Operation(R.UPLOAD_COMMIT, reg.CommitUpload, reg.VersionInfo, OP,
              "Verify the uploaded bytes (SHA-256, size) and commit the version"),
    Operation(R.UPLOAD_ABORT, reg.UploadRequest, Empty, OP, "Abandon an upload"),
    Operation(R.MODELS_LIST, reg.ListModels, reg.ModelPage, V,
              "Models with version counts and aliases, paged"),
    Operation(R.ALIAS_SET, reg.SetAlias, reg.AliasChange, OP, "Point an alias at a version"),
    Operation(R.ALIAS_DELETE, reg.DeleteAlias, reg.AliasChange, A, "Remove an alias"),
    Operation(R.ALIAS_LIST, reg.ModelRequest, reg.AliasList, V, "A model's aliases"),
    Operation(R.PROMOTE, reg.Promote, reg.AliasChange, A,
              "Move 'production' to a version (audited)"),
    Operation(R.ROLLBACK, reg.Rollback, reg.AliasChange, A,
              "Move an alias back to where it pointed before (audited)"),
    Operation(R.AUDIT, reg.ListAudit, reg.AuditPage, V,
              "Audit log: who moved which alias, when, from, to, why"),
    Operation(E.SUBMIT, ex.SubmitTask, ex.SubmitReply, OP,
              "Submit a task, validated against its type's input schema"),
    Operation(E.GET, ex.GetTask, ex.TaskRecord, V, "One task's status record"),
    Operation(E.LIST, ex.ListTasks, ex.TaskPage, V,
              "Tasks filtered by status, type, workflow and time, newest first"),
    Operation(E.CANCEL, ex.CancelTask, ex.CancelReply, OP, "Cancel a queued or running task"),
    Operation(E.FAILED_SUMMARY, ex.FailedSummaryRequest, ex.FailedSummary, V,
              "Failed, timed-out and dead tasks over a window, by type and error"),
    Operation(E.ACTIVITY, ex.ActivityRequest, ex.TaskActivity, V,
              "Tasks submitted, started and finished per time bucket, queue depth at each"),
    Operation(E.QUEUE, Empty, ex.QueueDepth, V,
              "Tasks waiting and held by executors now, per priority (constant cost)"),
    Operation(E.PURGE, ex.PurgeTasks, ex.PurgeReply, A, "Delete old finished task records"),
    Operation(E.DEAD_LIST, ex.ListDead, ex.DeadPage, V, "Dead letters, newest first"),
    Operation(E.DEAD_RESUBMIT, ex.ResubmitDead, ex.ResubmitReply, OP,
              "Queue a dead task again as a new task"),
    Operation(E.WORKFLOW_SUBMIT, ex.SubmitWorkflow, ex.WorkflowReply, OP,
              "Submit a DAG of tasks"),
    Operation(E.WORKFLOW_GET, ex.GetWorkflow, ex.WorkflowRecord, V,
              "A workflow's status and each node's"),
    Operation(E.WORKFLOW_CANCEL, ex.CancelWorkflow, ex.WorkflowRecord, OP,
              "Cancel a workflow: pending nodes never start, running ones stop"),
    Operation(E.TYPES, Empty, ex.TaskTypes, V, "Registered task types with input schemas"),
    Operation(D.BEGIN, ds.BeginDatasetUpload, ds.DatasetTicket, OP,
              "Begin a dataset upload (CSV or Parquet): where to put the bytes"),
    Operation(D.COMMIT, ds.CommitDatasetUpload, ds.DatasetInfo, OP,
              "Verify, parse and validate the uploaded file; same bytes, same dataset"),
    Operation(D.ABORT, ds.DatasetUploadRequest, Empty, OP, "Abandon a dataset upload"),
    Operation(D.GET, ds.DatasetRequest, ds.DatasetInfo, V,
              "A dataset by name or sha256:<hex>, with its validation report"),
    Operation(D.LIST, ds.ListDatasets, ds.DatasetPage, V, "Datasets by name, paged"),
    Operation(D.SEED_DEMO, ds.SeedDemo, ds.DatasetInfo, OP,
              "Register the bundled real demo prices (idempotent)"),
    Operation(Q.PREDICT, qu.PredictRequest, qu.PredictReply, V,
              "Score a model (any ref) on the latest bar per symbol; cached, hot-swapped"),
    Operation(Q.TRIALS, qu.TrialsRequest, qu.TrialsReply, V,
              "Trial history of a task type: trend, parameter effects, recommendation"),
    Operation(Q.TEMPLATES, Empty, qu.TemplatesReply, V, "The shipped pipeline templates"),
    Operation(Q.PERFORMANCE, qu.PerformanceRequest, qu.PerformanceReply, V,
              "A version's walk-forward equity and drawdown, fold metrics, latest backtests"),
    Operation(L.START, lv.StartRequest, lv.StrategyStatus, OP,
              "Store a live strategy and run it (idempotent)"),
    Operation(L.STOP, lv.StrategyRequest, lv.StrategyStatus, OP,
              "Stop a strategy's runner, positions kept"),
    Operation(L.KILL, lv.StrategyRequest, lv.StrategyStatus, OP,
              "Kill switch: flatten every position and stop"),
    Operation(L.STATUS, lv.StrategyRequest, lv.StrategyStatus, V,
              "A strategy's positions, cash, P&L, risk state and latest fills"),
    Operation(L.LIST, Empty, lv.StrategyList, V, "Every strategy's status"),
)


BY_SUBJECT: dict[str, Operation] = {op.subject: op for op in OPERATIONS}


def of_service(service: str) -> list[Operation]:
    """The operations ``service`` serves (its health excepted: every process answers that)."""
    return [op for op in OPERATIONS if op.service == service and op.role != PUBLIC]


def operation(subject: str) -> Operation:
    return BY_SUBJECT[subject]


def unserved(service: str, served: set[str]) -> list[str]:
    """Operations of ``service`` that ``served`` lacks: reported by health, failed by tests."""
    return sorted(op.subject for op in of_service(service) if op.subject not in served)
