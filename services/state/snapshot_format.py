"""The snapshot file: one header line, then one JSON record per line, checksummed.

    {"format": "quantops-state-snapshot", "version": 1, "sha256": "<hex of the body>", ...}
    {"type": "config", "namespace": "ns", "config": {...}}
    {"type": "value", "namespace": "ns", "key": "k", "value": {...}, "schema_version": 1, ...}

``sha256`` covers every byte after the header line. ``parse`` checks it and decodes every
record before returning any of them, so a restore either has the whole, intact snapshot or
nothing (``IntegrityError``).
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from shared.contracts.state import NamespaceConfig
from shared.errors import IntegrityError

FORMAT: Final = "quantops-state-snapshot"
VERSION: Final = 1


class Header(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    format: str
    version: int
    sha256: str
    created_at: float
    namespaces: list[str]
    records: int


class ConfigRecord(msgspec.Struct, frozen=True, kw_only=True, tag="config", tag_field="type"):
    namespace: str
    config: NamespaceConfig


class ValueRecord(msgspec.Struct, frozen=True, kw_only=True, tag="value", tag_field="type"):
    namespace: str
    key: str
    value: msgspec.Raw
    schema_version: int = 1
    revision: int = 0
    updated_at: float = 0.0
    expires_at: float | None = None


Record = ConfigRecord | ValueRecord
_record_decoder = msgspec.json.Decoder(Record)
_header_decoder = msgspec.json.Decoder(Header)
_encoder = msgspec.json.Encoder()


def render(records: list[Record], *, namespaces: list[str], created_at: float) -> bytes:
    body = b"".join(_encoder.encode(r) + b"\n" for r in records)
    header = Header(format=FORMAT, version=VERSION, sha256=hashlib.sha256(body).hexdigest(),
                    created_at=created_at, namespaces=namespaces, records=len(records))
    return _encoder.encode(header) + b"\n" + body


def parse(data: bytes) -> tuple[Header, list[Record]]:
    """The header and every record, or ``IntegrityError`` naming what is wrong."""
    head, sep, body = data.partition(b"\n")
    try:
        header = _header_decoder.decode(head)
    except msgspec.DecodeError as e:
        raise IntegrityError(f"not a state snapshot: unreadable header ({e})") from e
    if not sep or header.format != FORMAT:
        raise IntegrityError("not a state snapshot", details={"format": header.format})
    if header.version != VERSION:
        raise IntegrityError(f"snapshot format version {header.version} is not supported",
                             details={"version": header.version, "supported": VERSION})
    digest = hashlib.sha256(body).hexdigest()
    if digest != header.sha256:
        raise IntegrityError("snapshot checksum mismatch: the file is corrupted or truncated",
                             details={"expected_sha256": header.sha256, "sha256": digest})
    lines = body.splitlines()
    if len(lines) != header.records:
        raise IntegrityError(f"snapshot declares {header.records} records but holds "
                             f"{len(lines)}", details={"records": len(lines)})
    records = []
    for n, line in enumerate(lines, start=2):
        try:
            records.append(_record_decoder.decode(line))
        except msgspec.DecodeError as e:
            raise IntegrityError(f"snapshot line {n} is not a valid record: {e}",
                                 details={"line": n}) from e
    return header, records
