"""Stored values: compression above the threshold, transparent to readers; schema stamps."""

from __future__ import annotations

import json

from services.state import codec
from shared.contracts.state import StoredHeader, decode_stored


def test_small_documents_are_stored_as_is() -> None:
    doc = b'{"qty":10}'
    data, headers, compressed = codec.encode(doc, schema_version=1, threshold=100)
    assert (data, headers, compressed) == (doc, {}, False)
    assert codec.size_of(data, headers) == len(doc)
    assert codec.schema_of(headers) == 1


def test_large_documents_are_compressed_and_read_back_transparently() -> None:
    doc = json.dumps({"bars": [[1.0, 2.0, 3.0]] * 500}).encode()
    data, headers, compressed = codec.encode(doc, schema_version=3, threshold=100)
    assert compressed and len(data) < len(doc) // 5
    assert headers[StoredHeader.ENCODING] == "zlib"
    assert codec.size_of(data, headers) == len(doc)  # limits count the document, not storage
    assert codec.schema_of(headers) == 3
    assert decode_stored(data, headers) == doc


def test_incompressible_documents_are_not_stored_compressed() -> None:
    doc = b'"q7Zx!k2"'  # too short for zlib to win: its header alone costs more
    data, headers, compressed = codec.encode(doc, schema_version=1, threshold=10)
    assert not compressed and data == doc and StoredHeader.ENCODING not in headers


def test_headers_only_deliveries_report_the_payload_size() -> None:
    assert codec.size_of(b"", {"Nats-Msg-Size": "42"}) == 42
    assert codec.size_of(b"", {"Nats-Msg-Size": "10", StoredHeader.SIZE: "400"}) == 400
