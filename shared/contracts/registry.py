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
from typing import Annotated, Any, Final, Literal, cast

import msgspec

from shared.contracts.base import Message
from shared.contracts.bounds import (
    MAX_ITEMS,
    MAX_SAFE_INT,
    Count,
    Cursor,
    Finite,
    Name,
    QueryPageLimit,
    Text,
)
from shared.contracts.page import Page

#: Artifacts up to this size may be sent inline (``RegisterVersion``); bigger ones must go
#: through the object store, whatever the server's max_payload.
INLINE_MAX_BYTES: Final = 1024 * 1024
#: A version number on the wire.
VersionNumber = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
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
    task_id: Name = ""
    data_sha256: Name = ""
    code_version: Name = ""


class VersionSpec(Message, frozen=True):
    """Everything a caller says about a version it registers, except the bytes."""

    format: ArtifactFormat = ArtifactFormat.SKOPS
    trained_at: datetime | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    metrics: Annotated[dict[Name, Finite], msgspec.Meta(max_length=MAX_ITEMS)] = {}
    features: Annotated[list[Name], msgspec.Meta(max_length=MAX_ITEMS)] = []
    hyperparameters: Annotated[dict[Name, Any], msgspec.Meta(max_length=MAX_ITEMS)] = {}
    tags: Annotated[dict[Name, Text], msgspec.Meta(max_length=1000)] = {}
    lineage: Lineage = Lineage()
    description: Text = ""


class ArtifactInfo(Message, frozen=True):
    """Where the bytes are and what they must hash to."""

    bucket: str
    object_name: str
    sha256: Name
    size_bytes: Count
    format: ArtifactFormat


class VersionInfo(Message, frozen=True):
    model: Name
    version: int
    created_at: datetime
    artifact: ArtifactInfo
    created_by: str = ""
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    aliases: list[str] = []
    idempotency_key: Name = ""

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


class VersionSummary(Message, frozen=True):
    """One row of a version list: no features, hyperparameters or lineage (``GET`` has them)."""

    model: Name
    version: int
    created_at: datetime
    format: ArtifactFormat
    sha256: Name
    size_bytes: Count
    created_by: str = ""
    trained_at: datetime | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    metrics: Annotated[dict[Name, Finite], msgspec.Meta(max_length=MAX_ITEMS)] = {}
    tags: Annotated[dict[Name, Text], msgspec.Meta(max_length=1000)] = {}
    aliases: list[str] = []

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


# --- registration -------------------------------------------------------------------------


class BeginUpload(Message, frozen=True):
    model: Name
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    # Declared size, if known: refused before any byte moves when over the limit.
    size_bytes: Count | None = None
    # A retried registration with the same key returns the same version, never a second one.
    idempotency_key: Name = ""


class UploadTicket(Message, frozen=True):
    """Where to put the bytes. ``existing`` is set (and nothing else) when the idempotency key
    already names a committed version: there is nothing to upload."""

    upload_id: Name = ""
    bucket: str = ""
    object_name: str = ""
    chunk_bytes: int = 0
    max_bytes: int = 0
    expires_at: datetime | None = None
    model: Name = ""
    existing: VersionInfo | None = None
    #: Where the uploader publishes the chunks (``shared.clients.staging``).
    staging_subject: str = ""


class CommitUpload(Message, frozen=True):
    upload_id: Name
    sha256: Name
    size_bytes: Count


class UploadRequest(Message, frozen=True):
    upload_id: Name


class RegisterVersion(Message, frozen=True):
    """One-shot registration of a small artifact (at most ``INLINE_MAX_BYTES``), base64 in JSON."""

    model: Name
    # Decoding stops at twice the inline limit; the handler answers payload_too_large above it.
    artifact: Annotated[bytes, msgspec.Meta(max_length=2 * INLINE_MAX_BYTES)]
    spec: VersionSpec = msgspec.field(default_factory=VersionSpec)
    idempotency_key: Name = ""


# --- reads --------------------------------------------------------------------------------


class VersionRequest(Message, frozen=True):
    ref: Name


class MetricFilter(Message, frozen=True):
    name: Name
    op: MetricOp
    value: Finite

    @classmethod
    def parse(cls, text: str) -> MetricFilter:
        """``"rmse < 0.01"`` -> ``MetricFilter(name="rmse", op="<", value=0.01)``."""
        match = _FILTER.match(text)
        if not match:
            raise ValueError(f"not a metric filter: {text!r} (expected e.g. 'rmse<0.01')")
        name, op, value = match.groups()
        return cls(name=name, op=cast(MetricOp, op), value=float(value))


_FILTER = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.:-]*)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*\Z")


class ListVersions(Message, frozen=True):
    """Filters combine with AND; ``sort`` is ``version``, ``created_at``, ``trained_at``,
    ``data_start``, ``data_end`` or a metric name, ``-`` first for descending. Sorting by a field
    lists the versions that have it."""

    model: Name
    metrics: Annotated[list[MetricFilter], msgspec.Meta(max_length=100)] = []
    tags: Annotated[dict[Name, Text], msgspec.Meta(max_length=1000)] = {}
    trained_from: datetime | None = None
    trained_to: datetime | None = None
    data_from: datetime | None = None  # data_start >= data_from
    data_to: datetime | None = None  # data_end <= data_to
    sort: Name = "-version"
    limit: QueryPageLimit = 50
    cursor: Cursor = ""


class VersionPage(Page[VersionSummary], frozen=True):
    pass


class ListModels(Message, frozen=True):
    prefix: Name = ""
    limit: QueryPageLimit = 100
    cursor: Cursor = ""


class ModelSummary(Message, frozen=True):
    name: Name
    versions: int
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None
    aliases: dict[str, int] = {}


class ModelPage(Page[ModelSummary], frozen=True):
    pass


class CompareVersions(Message, frozen=True):
    refs: Annotated[list[Name], msgspec.Meta(max_length=100)]


class MetricComparison(Message, frozen=True):
    """``values`` and ``deltas`` follow ``Comparison.refs``; deltas are against the first ref."""

    name: Name
    direction: Direction
    values: list[float | None]
    deltas: list[float | None]
    winner: str | None = None  # None: unknown direction, a tie, or fewer than two values


class Comparison(Message, frozen=True):
    refs: Annotated[list[Name], msgspec.Meta(max_length=100)]
    metrics: list[MetricComparison] = []


# --- lifecycle ----------------------------------------------------------------------------


class SetAlias(Message, frozen=True):
    model: Name
    alias: Name
    version: VersionNumber | Name  # a number, another alias or "latest"
    reason: Text = ""


class Promote(Message, frozen=True):
    model: Name
    version: VersionNumber | Name
    reason: Text = ""


class Rollback(Message, frozen=True):
    model: Name
    alias: Name = PRODUCTION
    reason: Text = ""


class DeleteAlias(Message, frozen=True):
    model: Name
    alias: Name
    reason: Text = ""


class AliasChange(Message, frozen=True):
    model: Name
    alias: Name
    version: int | None = None
    previous: int | None = None
    changed: bool = True


class ModelRequest(Message, frozen=True):
    model: Name


class AliasList(Message, frozen=True):
    model: Name
    aliases: dict[str, int] = {}


class DeleteVersion(Message, frozen=True):
    ref: Name
    reason: Text = ""


class DeleteReply(Message, frozen=True):
    deleted: list[str] = []
    bytes_freed: int = 0


class Cleanup(Message, frozen=True):
    model: Name = ""  # empty: every model
    # default: QUANTOPS_REGISTRY_KEEP_VERSIONS
    keep: Annotated[int, msgspec.Meta(ge=0, le=MAX_ITEMS)] | None = None
    dry_run: bool = False
    reason: Text = ""


class CleanupReply(Message, frozen=True):
    deleted: list[str] = []
    kept_for_aliases: list[str] = []  # aliased, or the evaluation a remaining version names
    bytes_freed: int = 0
    dry_run: bool = False


class ListAudit(Message, frozen=True):
    model: Name = ""
    limit: QueryPageLimit = 100
    cursor: Cursor = ""


class AuditEntry(Message, frozen=True):
    id: int
    at: datetime
    principal: str
    model: Name
    action: str
    alias: Name = ""
    from_version: int | None = None
    to_version: int | None = None
    reason: Text = ""


class AuditPage(Page[AuditEntry], frozen=True):
    pass


class RegistryEvent(Message, frozen=True):
    """Body of every ``events.model.*`` message; ``id`` is also its ``Nats-Msg-Id``."""

    id: str
    kind: str
    model: Name
    at: datetime
    version: int | None = None
    alias: Name = ""
    from_version: int | None = None
    to_version: int | None = None
    sha256: Name = ""
    previous_sha256: str = ""
    principal: str = ""
    reason: Text = ""


def split_ref(ref: str) -> tuple[str, str]:
    """``"m@3"`` -> ``("m", "3")``; a bare name means its latest version."""
    name, sep, selector = ref.partition("@")
    return name, selector if sep else LATEST
