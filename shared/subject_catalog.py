"""The subject catalog: every NATS subject quantops serves or publishes, with its Structs.

``shared.subjects`` names the subjects; ``shared.operations`` declares every request/reply
operation (Structs and role); this module adds the payload of every published subject, stream
and bucket. The AsyncAPI document (``shared.asyncapi``) and ``docs/subjects.md`` are generated
from both:

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
from shared.operations import OPERATIONS, Operation  # noqa: F401  (re-exported)
from shared.subjects import Bucket, DatasetEvent, ModelEvent, Stream


@dataclass(frozen=True)
class Publication:
    """A subject facts are published on; ``{name}`` marks a token that varies."""

    subject: str
    payload: type[Any] | None  # None: the bytes of a stored value (state changes)
    summary: str
    stream: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


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
    Stream.STAGING: ("upload chunks, copied into an object store by the registry (artifacts, "
                     "datasets) or the state service (snapshot files) at commit; no rollups, "
                     "no message deletes, kept at most an upload's lifetime",
                     f"{subjects.STAGING_PREFIX}.<upload_id>"),
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
    Bucket.STREAM_LEASES: "KV (memory, max_age = lease TTL): one key per open event stream, "
                          "`<principal, base64url>.<slot>`, so the per-principal cap holds "
                          "across gateway replicas",
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
