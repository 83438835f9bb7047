"""Wire messages of datasets (subjects: ``shared.subjects.DatasetSubject``, served by the
registry).

A dataset is an OHLCV file (CSV or Parquet) stored once in the object store and addressed by the
SHA-256 of its bytes: uploading the same bytes again, under any name, gives the same dataset.
A *name* (``demo-us-stocks``) points to one digest and moves when new bytes are uploaded under
it. A *ref* is a name or ``sha256:<64 hex>``; tasks take refs and record the digest in lineage.

Uploading: ``BEGIN`` (name, format) -> put the bytes into the object store under the ticket's
``object_name`` -> ``COMMIT`` (sha256, size). The registry checks the digest, parses and validates
the file, and catalogues it with its summary and validation report. A file with validation
*errors* is stored and catalogued with ``valid = false``: its report stays readable, and every
training run refuses it with the offending rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from shared.contracts.base import Message, Name
from shared.contracts.bounds import MAX_SAFE_INT, Cursor, PageLimit
from shared.contracts.page import Page

DEMO_DATASET: Final = "demo-us-stocks"
DIGEST_PREFIX: Final = "sha256:"
DatasetFormat = Literal["csv", "parquet"]
#: Dataset names follow the model-name rules (lowercase, no '/', no '..').
DatasetName = Name


class Issue(Message, frozen=True):
    """One validation finding (what ``quant.validation.validate_ohlcv`` reports): which check,
    which symbol, the first offending row positions (0-based, in the file's row order) and
    their timestamps, and how many rows in all."""

    check: str
    message: str
    symbol: str | None = None
    rows: list[int] = []
    timestamps: list[str] = []
    count: int = 0


class ValidationReport(Message, frozen=True):
    """Errors make the data unusable for training; warnings are recorded with the model."""

    errors: list[Issue] = []
    warnings: list[Issue] = []
    rows: int = 0
    symbols: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.errors


class DatasetInfo(Message, frozen=True):
    """A catalogued dataset as seen through one of its names.

    ``valid`` is false when the report has errors. ``created`` is true in the reply of the
    upload that first stored these bytes, false when they were already known.
    """

    name: str
    sha256: str
    format: DatasetFormat
    size_bytes: int
    rows: int
    symbols: list[str]
    start: datetime | None
    end: datetime | None
    frequency: str
    valid: bool
    report: ValidationReport
    bucket: str
    object_name: str
    created_at: datetime
    created_by: str = ""
    source: str = ""
    created: bool = False

    @property
    def ref(self) -> str:
        return f"{DIGEST_PREFIX}{self.sha256}"


class DatasetSummary(Message, frozen=True):
    """One row of a list: no report details."""

    name: str
    sha256: str
    format: DatasetFormat
    size_bytes: int
    rows: int
    symbols: list[str]
    start: datetime | None
    end: datetime | None
    frequency: str
    valid: bool
    errors: int = 0
    warnings: int = 0
    created_at: datetime | None = None
    source: str = ""


class BeginDatasetUpload(Message, frozen=True):
    name: DatasetName
    format: DatasetFormat = "csv"
    # Declared size, if known: refused before any byte moves when over the limit.
    size_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    source: Annotated[str, msgspec.Meta(max_length=512)] = ""


class DatasetTicket(Message, frozen=True):
    upload_id: str
    bucket: str
    object_name: str
    chunk_bytes: int
    max_bytes: int
    expires_at: datetime
    name: str = ""
    #: Where the uploader publishes the chunks (``shared.clients.staging``).
    staging_subject: str = ""


class CommitDatasetUpload(Message, frozen=True):
    upload_id: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9a-f]{32}\Z")]
    sha256: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}\Z")]
    size_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]


class DatasetUploadRequest(Message, frozen=True):
    upload_id: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9a-f]{32}\Z")]


class DatasetRequest(Message, frozen=True):
    """``ref``: a dataset name or ``sha256:<hex>``."""

    ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ListDatasets(Message, frozen=True):
    prefix: Annotated[str, msgspec.Meta(max_length=128)] = ""
    limit: PageLimit = 100
    cursor: Cursor = ""


class DatasetPage(Page[DatasetSummary], frozen=True):
    pass


class SeedDemo(Message, frozen=True):
    """Register the bundled real prices under ``name`` (idempotent: same bytes, same dataset)."""

    name: DatasetName = DEMO_DATASET


def parse_ref(ref: str) -> tuple[str, str]:
    """``("name", "")`` for a name, ``("", "<hex>")`` for ``sha256:<hex>`` (or bare hex)."""
    value = ref.strip()
    if value.startswith(DIGEST_PREFIX):
        return "", value[len(DIGEST_PREFIX):].lower()
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return "", value
    return value, ""


class DatasetEvent(Message, frozen=True):
    """Body of ``events.dataset.named``: ``name`` now points to ``sha256`` (``previous_sha256``
    is where it pointed before, empty for a new name); ``id`` is also its ``Nats-Msg-Id``."""

    id: str
    name: str
    sha256: str
    at: datetime
    previous_sha256: str = ""
    principal: str = ""
