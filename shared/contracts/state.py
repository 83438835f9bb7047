"""Wire messages of the state service (subjects in ``shared.subjects.StateSubject``).

Values are JSON documents carried as ``msgspec.Raw``: the service stores and returns the
caller's bytes without decoding them, except to migrate an old schema version.

Revisions are JetStream stream sequences of the one state bucket, so they grow across every
key: a revision seen anywhere is a point in the store's global order (``min_revision``).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Final, Literal

import msgspec

from shared.contracts.base import Message
from shared.contracts.bounds import (
    MAX_ITEMS,
    MAX_SAFE_INT,
    Cursor,
    FloatSeconds,
    Name,
    PageLimit,
    Revision,
    SchemaVersion,
    Seconds,
)
from shared.contracts.page import Page
from shared.errors import IntegrityError

Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_ITEMS)]
#: The largest value a namespace may allow: values are checked, stored and inflated whole.
MAX_VALUE_BYTES: Final = 64 * 1024 * 1024
#: The largest snapshot file one import takes (the state service holds it while checking).
MAX_IMPORT_BYTES: Final = 1024 * 1024 * 1024
#: A namespace's byte limits: positive, and no larger than any number JSON keeps exact.
ByteLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]
#: Idempotency key of a write: the caller's id for "this write", at most once applied.
RequestId = Annotated[str, msgspec.Meta(max_length=128, pattern=r"^[A-Za-z0-9_.:-]*\Z")]
Operation = Literal["put", "delete"]
#: A JSON null as a raw value (``msgspec.Raw`` cannot take part in an optional union).
NULL: Final = msgspec.Raw(b"null")


class PutRequest(Message, frozen=True):
    """Write a value. ``expected_revision``: compare-and-set (0: the key must not exist).

    ``ttl_s``: the key disappears after this many seconds (a write with a TTL starts the key's
    history afresh). ``schema_version``: the version the document is written in (default: the
    namespace's current version). ``min_revision``: the replica checks the write against its
    cached namespace configuration only once it has applied this revision (send the revision
    of the last ``configure``/``restore`` you made), else against the stored one.

    ``request_id``: an idempotency key. A write whose key and ``request_id`` match one stored
    in the last two minutes is not applied again; the reply names the first one's revision.
    A caller that timed out retries with the same ``request_id`` and the write happens once
    (nats-py may still deliver the first attempt from its reconnect buffer).
    """

    namespace: Name
    key: Name
    value: msgspec.Raw
    expected_revision: Revision | None = None
    ttl_s: Seconds | None = None
    schema_version: SchemaVersion | None = None
    min_revision: Revision | None = None
    request_id: RequestId = ""


class PutReply(Message, frozen=True):
    namespace: Name
    key: Name
    revision: int
    compressed: bool = False


class GetRequest(Message, frozen=True):
    """Read a key, latest or at ``revision``.

    ``min_revision``: the highest revision this caller has seen. With it, a replica may answer
    from its cache once the cache has applied that revision (read-your-writes, monotonic
    reads); without it (``None``) the read goes to JetStream (linearizable).
    """

    namespace: Name
    key: Name
    revision: Revision | None = None
    min_revision: Revision | None = None


class GetReply(Message, frozen=True):
    """``schema_version`` is the version of ``value`` as returned (after migration);
    ``stored_schema_version`` the one it was written in."""

    namespace: Name
    key: Name
    revision: int
    value: msgspec.Raw
    schema_version: int = 1
    stored_schema_version: int = 1
    updated_at: float = 0.0
    expires_at: float | None = None


class DeleteRequest(Message, frozen=True):
    """``request_id``: an idempotency key, as for ``PutRequest``."""

    namespace: Name
    key: Name
    expected_revision: Revision | None = None
    request_id: RequestId = ""


class DeleteReply(Message, frozen=True):
    namespace: Name
    key: Name
    revision: int


class ListRequest(Message, frozen=True):
    """Keys of a namespace in key order, ``limit`` per page from after ``cursor``."""

    namespace: Name
    prefix: Name = ""
    limit: PageLimit = 100
    cursor: Cursor = ""
    min_revision: Revision | None = None


class KeyInfo(Message, frozen=True):
    key: Name
    revision: int
    size_bytes: int
    updated_at: float
    expires_at: float | None = None


class ListReply(Page[KeyInfo], frozen=True, kw_only=True):
    """One page of a namespace's keys. Before 0.2 the list was the field ``keys``; it is
    ``items`` like every listing's."""

    namespace: Name


class HistoryRequest(Message, frozen=True):
    namespace: Name
    key: Name
    limit: Limit = 10


class HistoryEntry(Message, frozen=True):
    """One revision as stored (no migration): deletes have ``value`` null."""

    revision: int
    operation: Operation
    value: msgspec.Raw = NULL
    schema_version: int = 1
    updated_at: float = 0.0


class HistoryReply(Message, frozen=True):
    namespace: Name
    key: Name
    entries: list[HistoryEntry]


class NamespaceConfig(Message, frozen=True):
    """What a namespace declares; a missing limit falls back to the service default."""

    schema_version: SchemaVersion = 1
    max_value_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_VALUE_BYTES)] | None = None
    max_total_bytes: ByteLimit | None = None


class ConfigureRequest(Message, frozen=True):
    namespace: Name
    config: NamespaceConfig


class NamespaceInfo(Message, frozen=True):
    """A namespace's configuration, effective limits and current usage (live keys only).
    ``revision``: of the configuration record, in replies to ``state.ns.configure``."""

    namespace: Name
    config: NamespaceConfig
    keys: int
    bytes: int
    max_value_bytes: int
    max_total_bytes: int
    revision: int = 0


class NamespacesRequest(Message, frozen=True):
    namespace: Name = ""


class NamespacesReply(Message, frozen=True):
    namespaces: list[NamespaceInfo]


class CleanupRequest(Message, frozen=True):
    """Delete every key of ``namespace`` not written for ``older_than_s`` seconds."""

    namespace: Name
    older_than_s: FloatSeconds
    dry_run: bool = False


class CleanupReply(Message, frozen=True):
    namespace: Name
    deleted: list[str]
    skipped: int = 0


class SnapshotRequest(Message, frozen=True):
    """Snapshot one namespace, or every namespace when empty."""

    namespace: Name = ""


class SnapshotInfo(Message, frozen=True):
    name: Name
    sha256: str
    namespaces: list[str]
    records: int
    size_bytes: int
    created_at: float


class ImportSnapshot(Message, frozen=True):
    """Store a snapshot file whose bytes the caller staged on ``staging.<upload_id>``
    (``shared.clients.staging``): the state service copies them into the snapshot bucket if
    they hash to ``sha256`` and number ``size_bytes``."""

    name: Name
    upload_id: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9a-f]{32}\Z")]
    sha256: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[0-9a-f]{64}\Z")]
    size_bytes: Annotated[int, msgspec.Meta(ge=0, le=MAX_IMPORT_BYTES)]


class SnapshotsReply(Message, frozen=True):
    snapshots: list[SnapshotInfo]


class RestoreRequest(Message, frozen=True):
    """Make the snapshot's namespaces (or only ``namespace``) exactly as in snapshot ``name``."""

    name: Name
    namespace: Name = ""


class RestoreReply(Message, frozen=True):
    name: Name
    namespaces: list[str]
    written: int
    deleted: int
    atomic: bool
    revision: int = 0  # the last revision the restore wrote (0: nothing to change)


class ChangeEvent(Message, frozen=True):
    """One change of a key, as the watch feed and the SSE route deliver it."""

    namespace: Name
    key: Name
    revision: int
    operation: Operation
    value: msgspec.Raw = NULL  # null on deletes
    schema_version: int = 1
    updated_at: float = 0.0


class StoredHeader(StrEnum):
    """Headers of a state value as stored in the KV bucket (and republished on the feed)."""

    ENCODING = "Quantops-Encoding"  # "zlib" when the payload is compressed
    SCHEMA = "Quantops-Schema"  # schema version of the document; absent means 1
    SIZE = "Quantops-Size"  # the document's JSON bytes, when stored compressed
    KV_OPERATION = "KV-Operation"  # "DEL" or "PURGE" on tombstones (the JetStream KV convention)


ZLIB: Final = "zlib"
TOMBSTONES: Final = frozenset({"DEL", "PURGE"})


def decode_stored(data: bytes, headers: Mapping[str, str] | None,
                  max_bytes: int = MAX_VALUE_BYTES) -> bytes:
    """The JSON document of a stored state value: decompressed if it was stored compressed.

    Inflation stops at ``max_bytes`` (no value may be larger): a crafted message in the bucket
    (a few kilobytes inflating to gigabytes) costs an ``IntegrityError``, not the process.
    """
    if not (headers and headers.get(StoredHeader.ENCODING) == ZLIB):
        return data
    inflater = zlib.decompressobj()
    try:
        document = inflater.decompress(data, max_bytes)
    except zlib.error as e:
        raise IntegrityError(f"a stored value does not inflate: {e}") from e
    if inflater.unconsumed_tail or not inflater.eof:
        raise IntegrityError(f"a stored value inflates beyond {max_bytes} bytes (or is cut)",
                             details={"max_bytes": max_bytes})
    return document
