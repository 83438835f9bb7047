"""The snapshot file: checksummed, and refused whole when anything in it is wrong."""

from __future__ import annotations

import msgspec
import pytest

from services.state import snapshot_format as fmt
from shared.contracts.state import NamespaceConfig
from shared.errors import IntegrityError


def sample() -> bytes:
    records: list[fmt.Record] = [
        fmt.ConfigRecord(namespace="ns", config=NamespaceConfig(schema_version=2)),
        fmt.ValueRecord(namespace="ns", key="a", value=msgspec.Raw(b'{"x":1}'),
                        schema_version=2, revision=5, updated_at=1.5),
        fmt.ValueRecord(namespace="ns", key="b.c", value=msgspec.Raw(b"[1,2]"), revision=6,
                        expires_at=99.0),
    ]
    return fmt.render(records, namespaces=["ns"], created_at=10.0)


def test_round_trip() -> None:
    header, records = fmt.parse(sample())
    assert header.records == 3 and header.namespaces == ["ns"] and len(header.sha256) == 64
    config, a, b = records
    assert isinstance(config, fmt.ConfigRecord) and config.config.schema_version == 2
    assert isinstance(a, fmt.ValueRecord) and bytes(a.value) == b'{"x":1}'
    assert isinstance(b, fmt.ValueRecord) and b.key == "b.c" and b.expires_at == 99.0


def test_one_flipped_byte_is_detected() -> None:
    data = bytearray(sample())
    data[-5] ^= 0x01
    with pytest.raises(IntegrityError) as e:
        fmt.parse(bytes(data))
    assert "checksum" in e.value.message


def test_truncation_is_detected() -> None:
    with pytest.raises(IntegrityError):
        fmt.parse(sample()[:-10])


def test_a_record_that_does_not_decode_is_refused_even_with_a_matching_checksum() -> None:
    import hashlib

    body = b'{"type":"value","namespace":"ns","key":"a","value":{"x":1}}\n{"type":"mystery"}\n'
    header = msgspec.json.encode(fmt.Header(
        format=fmt.FORMAT, version=1, sha256=hashlib.sha256(body).hexdigest(), created_at=0,
        namespaces=["ns"], records=2))
    with pytest.raises(IntegrityError) as e:
        fmt.parse(header + b"\n" + body)
    assert e.value.details == {"line": 3}


@pytest.mark.parametrize("data", [b"", b"not json\n", b'{"format":"other","version":1,'
                                  b'"sha256":"","created_at":0,"namespaces":[],"records":0}\n'])
def test_other_files_are_not_snapshots(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        fmt.parse(data)


def test_a_future_format_version_is_refused() -> None:
    head, _, body = sample().partition(b"\n")
    doc = msgspec.json.decode(head)
    doc["version"] = 2
    with pytest.raises(IntegrityError) as e:
        fmt.parse(msgspec.json.encode(doc) + b"\n" + body)
    assert e.value.details["version"] == 2
