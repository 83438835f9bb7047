"""How a JSON document becomes a stored value and back: compression and schema stamp.

Documents above the threshold are stored zlib-compressed when that makes them smaller; the
headers say so (``Quantops-Encoding: zlib``, the plain size in ``Quantops-Size``), so readers,
the cache and the watch feed decompress transparently (``shared.contracts.state.decode_stored``)
and limits count the document's own JSON bytes, whatever its stored size.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Final

from shared.contracts.state import ZLIB, StoredHeader, decode_stored

MSG_SIZE: Final = "Nats-Msg-Size"
#: zlib's default: state documents are small and written far less often than read.
LEVEL: Final = 6

__all__ = ["decode_stored", "encode", "schema_of", "size_of"]


def encode(document: bytes, *, schema_version: int, threshold: int
           ) -> tuple[bytes, dict[str, str], bool]:
    """Stored payload, its headers, and whether it was compressed."""
    headers: dict[str, str] = {}
    if schema_version != 1:
        headers[StoredHeader.SCHEMA] = str(schema_version)
    if len(document) > threshold:
        packed = zlib.compress(document, LEVEL)
        if len(packed) < len(document):
            headers[StoredHeader.ENCODING] = ZLIB
            headers[StoredHeader.SIZE] = str(len(document))
            return packed, headers, True
    return document, headers, False


def size_of(data: bytes, headers: Mapping[str, str]) -> int:
    """The document's JSON bytes, without decompressing it (``data`` may be a headers-only
    delivery, which carries the payload size in ``Nats-Msg-Size``)."""
    size = headers.get(StoredHeader.SIZE) or headers.get(MSG_SIZE)
    return int(size) if size is not None else len(data)


def schema_of(headers: Mapping[str, str]) -> int:
    version = headers.get(StoredHeader.SCHEMA)
    return int(version) if version is not None else 1
