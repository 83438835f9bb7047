"""Compressed state values inflate within a bound (issue 14: decompression limits)."""

from __future__ import annotations

import zlib

import pytest

from shared.contracts.state import MAX_VALUE_BYTES, ZLIB, StoredHeader, decode_stored
from shared.errors import IntegrityError

HEADERS = {StoredHeader.ENCODING.value: ZLIB}


def test_a_zlib_bomb_stops_at_the_bound() -> None:
    bomb = zlib.compress(b"0" * (16 << 20), 9)  # 16 KiB that inflate to 16 MiB
    assert len(bomb) < 64 * 1024
    with pytest.raises(IntegrityError, match="beyond"):
        decode_stored(bomb, HEADERS, max_bytes=1 << 20)


def test_values_up_to_the_bound_inflate() -> None:
    doc = b'{"a": "' + b"x" * 1000 + b'"}'
    assert decode_stored(zlib.compress(doc), HEADERS, max_bytes=len(doc)) == doc
    assert decode_stored(doc, {}) == doc
    assert MAX_VALUE_BYTES == 64 << 20


def test_garbage_and_cut_streams_are_integrity_errors() -> None:
    with pytest.raises(IntegrityError):
        decode_stored(b"not zlib", HEADERS)
    with pytest.raises(IntegrityError):
        decode_stored(zlib.compress(b"x" * 10_000)[:20], HEADERS)
