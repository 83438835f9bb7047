"""Wire messages of the model registry; the subjects are ``shared.subjects.RegistrySubject``.

A version is named by a *ref*: ``name@7`` (version number), ``name@production`` (an alias),
``name@latest`` or just ``name`` (the highest version). Times are UTC datetimes (RFC 3339 on the
wire; a naive datetime is read as UTC).

Registering any size: ``UPLOAD_BEGIN`` (metadata) -> put the bytes into the object store under the
ticket's ``object_name`` -> ``UPLOAD_COMMIT`` (sha256, size). Small artifacts (up to
``INLINE_MAX_BYTES``) may instead travel inline in one ``REGISTER`` request.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal, cast

import msgspec

from shared.contracts.base import Message

#: Artifacts up to this size may be sent inline (``RegisterVersion``); bigger ones must go
#: through the object store, whatever the server's max_payload.
INLINE_MAX_BYTES: Final = 1024 * 1024
LATEST: Final = "latest"
PRODUCTION: Final = "production"


class ArtifactFormat(StrEnum):
    """How an artifact's bytes are read back. Pickle and joblib run code on load: the registry
    refuses them unless the deployment sets ``QUANTOPS_REGISTRY_ALLOW_PICKLE``."""

    SKOPS = "skops"  # scikit-learn through skops: a zip of JSON, no code runs on load
    ONNX = "onnx"
    JSON = "json"
    BINARY = "binary"  # opaque bytes the caller knows how to read (LightGBM text, XGBoost UBJ)
    PICKLE = "pickle"
    JOBLIB = "joblib"


CODE_EXECUTING_FORMATS: Final = frozenset({ArtifactFormat.PICKLE, ArtifactFormat.JOBLIB})

Direction = Literal["higher", "lower", "unknown"]
MetricOp = Literal[">", ">=", "<", "<=", "==", "!="]


class Lineage(Message, frozen=True):
    task_id: str = ""
    data_sha256: str = ""
    code_version: str = ""


class VersionSpec(Message, frozen=True):
    """Everything a caller says about a version it registers, except the bytes."""

    format: ArtifactFormat = ArtifactFormat.SKOPS
    trained_at: datetime | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    metrics: dict[str, float] = {}
    features: list[str] = []
    hyperparameters: dict[str, Any] = {}
    tags: dict[str, str] = {}
    lineage: Lineage = Lineage()
    description: str = ""


class ArtifactInfo(Message, frozen=True):
    """Where the bytes are and what they must hash to."""

    bucket: str
    object_name: str
    sha256: str
    size_bytes: int
    format: ArtifactFormat


class VersionInfo(Message, frozen=True):
    model: str
    version: int
    created_at: datetime
    artifact: ArtifactInfo
    created_by: str = ""
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    aliases: list[str] = []
    idempotency_key: str = ""

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


class VersionSummary(Message, frozen=True):
    """One row of a version list: no features, hyperparameters or lineage (``GET`` has them)."""

    model: str
    version: int
    created_at: datetime
    format: ArtifactFormat
    sha256: str
    size_bytes: int
    created_by: str = ""
    trained_at: datetime | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    aliases: list[str] = []

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


# --- registration -------------------------------------------------------------------------


class BeginUpload(Message, frozen=True):
    model: str
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    # Declared size, if known: refused before any byte moves when over the limit.
    size_bytes: int | None = None
    # A retried registration with the same key returns the same version, never a second one.
    idempotency_key: str = ""


class UploadTicket(Message, frozen=True):
    """Where to put the bytes. ``existing`` is set (and nothing else) when the idempotency key
    already names a committed version: there is nothing to upload."""

    upload_id: str = ""
    bucket: str = ""
    object_name: str = ""
    chunk_bytes: int = 0
    max_bytes: int = 0
    expires_at: datetime | None = None
    model: str = ""
    existing: VersionInfo | None = None


class CommitUpload(Message, frozen=True):
    upload_id: str
    sha256: str
    size_bytes: int


class UploadRequest(Message, frozen=True):
    upload_id: str


class RegisterVersion(Message, frozen=True):
    """One-shot registration of a small artifact (at most ``INLINE_MAX_BYTES``), base64 in JSON."""

    model: str
    artifact: bytes
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    idempotency_key: str = ""


# --- reads --------------------------------------------------------------------------------


class VersionRequest(Message, frozen=True):
    ref: str


class MetricFilter(Message, frozen=True):
    name: str
    op: MetricOp
    value: float

    @classmethod
    def parse(cls, text: str) -> MetricFilter:
        """``"rmse < 0.01"`` -> ``MetricFilter(name="rmse", op="<", value=0.01)``."""
        match = _FILTER.match(text)
        if not match:
            raise ValueError(f"not a metric filter: {text!r} (expected e.g. 'rmse<0.01')")
        name, op, value = match.groups()
        return cls(name=name, op=cast(MetricOp, op), value=float(value))


_FILTER = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.:-]*)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*$")


class ListVersions(Message, frozen=True):
    """Filters combine with AND; ``sort`` is ``version``, ``created_at``, ``trained_at``,
    ``data_start``, ``data_end`` or a metric name, ``-`` first for descending. Sorting by a field
    lists the versions that have it."""

    model: str
    metrics: list[MetricFilter] = []
    tags: dict[str, str] = {}
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    data_from: datetime | None = None  # data_start >= data_from
    data_to: datetime | None = None  # data_end <= data_to
    sort: str = "-version"
    limit: int = 50
    cursor: str = ""


class VersionPage(Message, frozen=True):
    items: list[VersionSummary] = []
    next_cursor: str = ""


class ListModels(Message, frozen=True):
    prefix: str = ""
    limit: int = 100
    cursor: str = ""


class ModelSummary(Message, frozen=True):
    name: str
    versions: int
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    aliases: dict[str, int] = {}


class ModelPage(Message, frozen=True):
    items: list[ModelSummary] = []
    next_cursor: str = ""


class CompareVersions(Message, frozen=True):
    refs: list[str]


class MetricComparison(Message, frozen=True):
    """``values`` and ``deltas`` follow ``Comparison.refs``; deltas are against the first ref."""

    name: str
    direction: Direction
    values: list[float | None]
    deltas: list[float | None]
    winner: str | None = None  # None: unknown direction, a tie, or fewer than two values


class Comparison(Message, frozen=True):
    refs: list[str]
    metrics: list[MetricComparison] = []


# --- lifecycle ----------------------------------------------------------------------------


class SetAlias(Message, frozen=True):
    model: str
    alias: str
    version: int | str  # a number, another alias or "latest"
    reason: str = ""


class Promote(Message, frozen=True):
    model: str
    version: int | str
    reason: str = ""


class Rollback(Message, frozen=True):
    model: str
    alias: str = PRODUCTION
    reason: str = ""


class DeleteAlias(Message, frozen=True):
    model: str
    alias: str
    reason: str = ""


class AliasChange(Message, frozen=True):
    model: str
    alias: str
    version: int | None = None
    previous: int | None = None
    changed: bool = True


class ModelRequest(Message, frozen=True):
    model: str


class AliasList(Message, frozen=True):
    model: str
    aliases: dict[str, int] = {}


class DeleteVersion(Message, frozen=True):
    ref: str
    reason: str = ""


class DeleteReply(Message, frozen=True):
    deleted: list[str] = []
    bytes_freed: int = 0


class Cleanup(Message, frozen=True):
    model: str = ""  # empty: every model
    keep: int | None = None  # default: QUANTOPS_REGISTRY_KEEP_VERSIONS
    dry_run: bool = False
    reason: str = ""


class CleanupReply(Message, frozen=True):
    deleted: list[str] = []
    kept_for_aliases: list[str] = []
    bytes_freed: int = 0
    dry_run: bool = False


class ListAudit(Message, frozen=True):
    model: str = ""
    limit: int = 100
    cursor: str = ""


class AuditEntry(Message, frozen=True):
    id: int
    at: datetime
    principal: str
    model: str
    action: str
    alias: str = ""
    from_version: int | None = None
    to_version: int | None = None
    reason: str = ""


class AuditPage(Message, frozen=True):
    items: list[AuditEntry] = []
    next_cursor: str = ""


class RegistryEvent(Message, frozen=True):
    """Body of every ``events.model.*`` message; ``id`` is also its ``Nats-Msg-Id``."""

    id: str
    kind: str
    model: str
    at: datetime
    version: int | None = None
    alias: str = ""
    from_version: int | None = None
    to_version: int | None = None
    sha256: str = ""
    previous_sha256: str = ""
    principal: str = ""
    reason: str = ""


def split_ref(ref: str) -> tuple[str, str]:
    """``"m@3"`` -> ``("m", "3")``; a bare name means its latest version."""
    name, sep, selector = ref.partition("@")
    return name, selector if sep else LATEST
