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

Revision = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[int, msgspec.Meta(ge=1)]
Limit = Annotated[int, msgspec.Meta(ge=1)]
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
    """

    namespace: str
    key: str
    value: msgspec.Raw
    expected_revision: Revision | None = None
    ttl_s: Seconds | None = None
    schema_version: Annotated[int, msgspec.Meta(ge=1)] | None = None
    min_revision: Revision | None = None


class PutReply(Message, frozen=True):
    namespace: str
    key: str
    revision: int
    compressed: bool = False


class GetRequest(Message, frozen=True):
    """Read a key, latest or at ``revision``.

    ``min_revision``: the highest revision this caller has seen. With it, a replica may answer
    from its cache once the cache has applied that revision (read-your-writes, monotonic
    reads); without it (``None``) the read goes to JetStream (linearizable).
    """

    namespace: str
    key: str
    revision: Revision | None = None
    min_revision: Revision | None = None


class GetReply(Message, frozen=True):
    """``schema_version`` is the version of ``value`` as returned (after migration);
    ``stored_schema_version`` the one it was written in."""

    namespace: str
    key: str
    revision: int
    value: msgspec.Raw
    schema_version: int = 1
    stored_schema_version: int = 1
    updated_at: float = 0.0
    expires_at: float | None = None


class DeleteRequest(Message, frozen=True):
    namespace: str
    key: str
    expected_revision: Revision | None = None


class DeleteReply(Message, frozen=True):
    namespace: str
    key: str
    revision: int


class ListRequest(Message, frozen=True):
    """Keys of a namespace in key order, ``limit`` per page from after ``cursor``."""

    namespace: str
    prefix: str = ""
    limit: Limit = 100
    cursor: str = ""
    min_revision: Revision | None = None


class KeyInfo(Message, frozen=True):
    key: str
    revision: int
    size_bytes: int
    updated_at: float
    expires_at: float | None = None


class ListReply(Message, frozen=True):
    namespace: str
    keys: list[KeyInfo]
    next_cursor: str = ""


class HistoryRequest(Message, frozen=True):
    namespace: str
    key: str
    limit: Limit = 10


class HistoryEntry(Message, frozen=True):
    """One revision as stored (no migration): deletes have ``value`` null."""

    revision: int
    operation: Operation
    value: msgspec.Raw = NULL
    schema_version: int = 1
    updated_at: float = 0.0


class HistoryReply(Message, frozen=True):
    namespace: str
    key: str
    entries: list[HistoryEntry]


class NamespaceConfig(Message, frozen=True):
    """What a namespace declares; a missing limit falls back to the service default."""

    schema_version: Annotated[int, msgspec.Meta(ge=1)] = 1
    max_value_bytes: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_total_bytes: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ConfigureRequest(Message, frozen=True):
    namespace: str
    config: NamespaceConfig


class NamespaceInfo(Message, frozen=True):
    """A namespace's configuration, effective limits and current usage (live keys only).
    ``revision``: of the configuration record, in replies to ``state.ns.configure``."""

    namespace: str
    config: NamespaceConfig
    keys: int
    bytes: int
    max_value_bytes: int
    max_total_bytes: int
    revision: int = 0


class NamespacesRequest(Message, frozen=True):
    namespace: str = ""


class NamespacesReply(Message, frozen=True):
    namespaces: list[NamespaceInfo]


class CleanupRequest(Message, frozen=True):
    """Delete every key of ``namespace`` not written for ``older_than_s`` seconds."""

    namespace: str
    older_than_s: Annotated[float, msgspec.Meta(ge=0)]
    dry_run: bool = False


class CleanupReply(Message, frozen=True):
    namespace: str
    deleted: list[str]
    skipped: int = 0


class SnapshotRequest(Message, frozen=True):
    """Snapshot one namespace, or every namespace when empty."""

    namespace: str = ""


class SnapshotInfo(Message, frozen=True):
    name: str
    sha256: str
    namespaces: list[str]
    records: int
    size_bytes: int
    created_at: float


class SnapshotsReply(Message, frozen=True):
    snapshots: list[SnapshotInfo]


class RestoreRequest(Message, frozen=True):
    """Make the snapshot's namespaces (or only ``namespace``) exactly as in snapshot ``name``."""

    name: str
    namespace: str = ""


class RestoreReply(Message, frozen=True):
    name: str
    namespaces: list[str]
    written: int
    deleted: int
    atomic: bool
    revision: int = 0  # the last revision the restore wrote (0: nothing to change)


class ChangeEvent(Message, frozen=True):
    """One change of a key, as the watch feed and the SSE route deliver it."""

    namespace: str
    key: str
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


def decode_stored(data: bytes, headers: Mapping[str, str] | None) -> bytes:
    """The JSON document of a stored state value: decompressed if it was stored compressed."""
    if headers and headers.get(StoredHeader.ENCODING) == ZLIB:
        return zlib.decompress(data)
    return data
