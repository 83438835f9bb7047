"""Every NATS subject, JetStream stream, KV bucket and object-store bucket quantops uses.

Nothing else in the code base spells a subject: import it from here. The catalog in
``docs/subjects.md`` is the human-readable view of this module.

Conventions:
- ``<service>.<resource>.<verb>``: request/reply, served in the queue group named after the
  service, so any number of replicas share the load.
- ``<service>.health``: every service answers it (``HealthReply``).
- ``events.<resource>.<what>``: facts published to the ``EVENTS`` stream, for anyone to consume.
- Headers: W3C ``traceparent``/``tracestate``, ``X-Correlation-ID``, ``Quantops-Principal``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Service(StrEnum):
    REGISTRY = "registry"
    EXECUTOR = "executor"
    STATE = "state"
    GATEWAY = "gateway"


SERVICES: Final = (Service.STATE, Service.REGISTRY, Service.EXECUTOR, Service.GATEWAY)


def health(service: Service | str) -> str:
    return f"{service}.health"


class Header(StrEnum):
    CORRELATION_ID = "X-Correlation-ID"
    PRINCIPAL = "Quantops-Principal"
    ROLE = "Quantops-Role"
    # A signed token naming the principal and role (shared.bustokens); services trust only it.
    AUTH = "Quantops-Auth"
    # Set on every failed reply; the body is then an ``ErrorReply``.
    STATUS = "Quantops-Status"
    MSG_ID = "Nats-Msg-Id"


STATUS_ERROR: Final = "error"


class StateSubject(StrEnum):
    """Request/reply subjects of the state service (Structs in ``shared.contracts.state``)."""

    PUT = "state.kv.put"
    GET = "state.kv.get"
    DELETE = "state.kv.delete"
    LIST = "state.kv.list"
    HISTORY = "state.kv.history"
    NAMESPACES = "state.ns.list"
    CONFIGURE = "state.ns.configure"
    CLEANUP = "state.ns.cleanup"
    SNAPSHOT = "state.snapshot.create"
    SNAPSHOTS = "state.snapshot.list"
    RESTORE = "state.snapshot.restore"
    IMPORT = "state.snapshot.import"


#: The watch feed (core NATS, no reply): JetStream republishes every committed change of a
#: state key on ``state.changes.<namespace>.<key>``; subscribe to ``state.changes.<ns>.>``.
STATE_CHANGES_PREFIX: Final = "state.changes"


class RegistrySubject(StrEnum):
    """Request/reply subjects of the model registry (Structs in ``shared.contracts.registry``)."""

    REGISTER = "registry.versions.register"  # small artifact inline in the request
    GET = "registry.versions.get"
    LIST = "registry.versions.list"
    COMPARE = "registry.versions.compare"
    DELETE = "registry.versions.delete"
    CLEANUP = "registry.versions.cleanup"
    UPLOAD_BEGIN = "registry.uploads.begin"  # any size: bytes go through the object store
    UPLOAD_GET = "registry.uploads.get"
    UPLOAD_COMMIT = "registry.uploads.commit"
    UPLOAD_ABORT = "registry.uploads.abort"
    MODELS_LIST = "registry.models.list"
    ALIAS_SET = "registry.aliases.set"
    ALIAS_DELETE = "registry.aliases.delete"
    ALIAS_LIST = "registry.aliases.list"
    PROMOTE = "registry.aliases.promote"
    ROLLBACK = "registry.aliases.rollback"
    AUDIT = "registry.audit.list"


class ModelEvent(StrEnum):
    """Facts the registry publishes on the EVENTS stream (body: ``RegistryEvent``)."""

    REGISTERED = "events.model.registered"
    PROMOTED = "events.model.promoted"  # production moved by promote
    ROLLED_BACK = "events.model.rolled_back"  # an alias moved back by rollback
    ALIAS_MOVED = "events.model.alias_moved"  # any other alias set or move
    ALIAS_DELETED = "events.model.alias_deleted"
    DELETED = "events.model.deleted"  # a version deleted (single delete or cleanup)


#: Every model event: what a live process subscribes to for hot swapping.
MODEL_EVENTS: Final = "events.model.>"


class ExecutorSubject(StrEnum):
    """Request/reply subjects of the executor (Structs in ``shared.contracts.executor``)."""

    SUBMIT = "executor.tasks.submit"  # validated submission (type and input schema)
    GET = "executor.tasks.get"
    LIST = "executor.tasks.list"
    CANCEL = "executor.tasks.cancel"
    FAILED_SUMMARY = "executor.tasks.failed_summary"
    ACTIVITY = "executor.tasks.activity"  # throughput and queue depth over time
    QUEUE = "executor.tasks.queue"  # queue depth now, per priority, from the consumers
    PURGE = "executor.tasks.purge"
    DEAD_LIST = "executor.dead.list"
    DEAD_RESUBMIT = "executor.dead.resubmit"
    WORKFLOW_SUBMIT = "executor.workflows.submit"
    WORKFLOW_GET = "executor.workflows.get"
    WORKFLOW_CANCEL = "executor.workflows.cancel"
    TYPES = "executor.types.list"


class DatasetSubject(StrEnum):
    """Request/reply subjects of datasets, served by the registry (Structs in
    ``shared.contracts.datasets``). Bytes go through the object store, like model uploads."""

    BEGIN = "registry.datasets.begin"  # name and format in; where to put the bytes out
    COMMIT = "registry.datasets.commit"  # verify, validate, catalogue (same bytes: same dataset)
    ABORT = "registry.datasets.abort"
    GET = "registry.datasets.get"
    LIST = "registry.datasets.list"
    SEED_DEMO = "registry.datasets.seed_demo"  # the bundled real prices (idempotent)


class DatasetEvent(StrEnum):
    """Facts the registry publishes about datasets on the EVENTS stream (body:
    ``shared.contracts.datasets.DatasetEvent``)."""

    NAMED = "events.dataset.named"  # a name now points to a (new or known) file


#: Every dataset event: what a process caching name -> digest resolutions listens to.
DATASET_EVENTS: Final = "events.dataset.>"


class QuantSubject(StrEnum):
    """Request/reply subjects of the quant plugin, served by every executor process (Structs in
    ``shared.contracts.quant``)."""

    PREDICT = "executor.quant.predict"  # score a model on the latest features (cached models)
    TRIALS = "executor.quant.trials"  # trial history: trends and recommended parameters
    TEMPLATES = "executor.quant.templates"  # the shipped pipeline templates
    PERFORMANCE = "executor.quant.performance"  # a version's curves, folds and backtests


class LiveSubject(StrEnum):
    """Request/reply subjects of the live trading loop, served by every executor process that
    loads the quant plugin (Structs in ``shared.contracts.live``)."""

    START = "executor.live.start"  # store a strategy and run it (operator)
    STOP = "executor.live.stop"  # stop its runner, positions kept (operator)
    KILL = "executor.live.kill"  # the kill switch: flatten and stop (operator)
    STATUS = "executor.live.status"  # positions, P&L, risk state, latest fills
    LIST = "executor.live.list"  # every strategy's status


#: Facts of the live loop on the EVENTS stream, ``<prefix>.<strategy>``: fills (``FillEvent``)
#: and risk-limit breaches (``BreachEvent``).
LIVE_FILL_EVENTS: Final = "events.live.fill"
LIVE_RISK_EVENTS: Final = "events.live.risk"


def live_fill_subject(strategy: str) -> str:
    return f"{LIVE_FILL_EVENTS}.{strategy}"


def live_risk_subject(strategy: str) -> str:
    return f"{LIVE_RISK_EVENTS}.{strategy}"


#: Market data: ``bars.<symbol>`` on the BARS stream (body ``shared.contracts.quant.Bar``).
BARS_PREFIX: Final = "bars"


def bar_subject(symbol: str) -> str:
    return f"{BARS_PREFIX}.{symbol}"


#: The largest request body a request/reply subject accepts (the bus refuses bigger ones with
#: ``payload_too_large`` before decoding). Requests name things; the few that carry data say
#: how much below. Nothing exceeds the server's ``max_payload`` (8 MiB in every deployment).
MAX_REQUEST_BYTES: Final = 1024 * 1024
LARGE_REQUESTS: Final[dict[str, int]] = {
    StateSubject.PUT: 8 * 1024 * 1024,  # a value, up to a namespace's max_value_bytes
    RegistrySubject.REGISTER: 2 * 1024 * 1024,  # a 1 MiB artifact inline, base64
    ExecutorSubject.SUBMIT: 4 * 1024 * 1024,  # task input
    ExecutorSubject.WORKFLOW_SUBMIT: 4 * 1024 * 1024,
    QuantSubject.PREDICT: 8 * 1024 * 1024,  # bars in the request
}


def max_request_bytes(subject: str) -> int:
    return LARGE_REQUESTS.get(subject, MAX_REQUEST_BYTES)


class Stream(StrEnum):
    """JetStream streams and the subjects they capture."""

    TASKS = "QUANTOPS_TASKS"  # work queue: tasks.queue.<priority>.<task_id>
    TASKS_DEAD = "QUANTOPS_TASKS_DEAD"  # dead letters: tasks.dead.<task_id>
    EVENTS = "QUANTOPS_EVENTS"
    BARS = "QUANTOPS_BARS"  # market data: bars.<symbol>, deduplicated by symbol and timestamp
    STAGING = "QUANTOPS_STAGING"  # upload chunks: staging.<upload_id>, copied by the registry


#: Task messages: ``tasks.queue.<high|normal|low>.<task_id>`` (shared.contracts.executor).
TASK_QUEUE_PREFIX: Final = "tasks.queue"
#: Upload chunks: ``staging.<upload_id>`` (``shared.clients.staging``).
STAGING_PREFIX: Final = "staging"


def staging_subject(upload_id: str) -> str:
    return f"{STAGING_PREFIX}.{upload_id}"


#: Every event subject starts with this; the EVENTS stream captures ``events.>``.
EVENTS_PREFIX: Final = "events"
#: Dead letters: ``tasks.dead.<task_id>`` on the TASKS_DEAD stream.
DEAD_LETTER_PREFIX: Final = "tasks.dead"
#: Task status changes: ``events.task.<status>.<task_id>`` (body: the task's status record).
TASK_EVENTS: Final = f"{EVENTS_PREFIX}.task"
#: Workflow status changes: ``events.workflow.<status>.<workflow_id>``.
WORKFLOW_EVENTS: Final = f"{EVENTS_PREFIX}.workflow"
#: The pseudo-status of ``events.task.cancel_requested.<task_id>``, which every executor hears.
CANCEL_REQUESTED: Final = "cancel_requested"


def queue_subject(priority: str, task_id: str) -> str:
    return f"{TASK_QUEUE_PREFIX}.{priority}.{task_id}"


def dead_letter_subject(task_id: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{task_id}"


def task_event_subject(status: str, task_id: str) -> str:
    return f"{TASK_EVENTS}.{status}.{task_id}"


def workflow_event_subject(status: str, workflow_id: str) -> str:
    return f"{WORKFLOW_EVENTS}.{status}.{workflow_id}"


class Bucket(StrEnum):
    """JetStream KV and object-store buckets."""

    STATE = "quantops_state"
    STATE_SNAPSHOTS = "quantops_state_snapshots"  # object store: one file per snapshot
    TASK_STATUS = "quantops_task_status"
    WORKFLOWS = "quantops_workflows"
    ARTIFACTS = "quantops_artifacts"
    DATASETS = "quantops_datasets"  # object store: dataset files (owned by the registry)
    AUTH = "quantops_auth"  # KV: the gateway's users, API keys and sessions (auth_store=kv)
    STREAM_LEASES = "quantops_stream_leases"  # KV: event-stream slots per principal (gateway)
