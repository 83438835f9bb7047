"""Cheap checks of JSON bytes before anything decodes them: UTF-8, and how deeply they nest.

Decoders recurse once per level: a 2 KB body of ``[[[[...`` costs a ``RecursionError`` in
msgspec (or a C stack in anything else) and the error surfaced as a 500. Checking the depth
first makes every such body a plain ``invalid_request``, on HTTP and NATS alike.

The scan is vectorised (numpy, already here through pandas): bracket characters inside
strings do not count, a quote preceded by an odd run of backslashes does not end a string.
Bodies with fewer opening brackets than the limit skip the scan entirely (``bytes.count`` is
a C loop), which is every ordinary request.

UTF-8 is checked here because JSON is UTF-8 (RFC 8259) and decoders skip the bytes of fields
they do not know without looking at them: invalid bytes would otherwise be accepted, stored and
handed to a reader that chokes on them.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from shared.errors import InvalidRequest

#: Deep enough for any document a person writes, far from the decoders' recursion limits.
MAX_DEPTH: Final = 64

_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def depth(data: bytes | bytearray | memoryview) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (malformed JSON gets a best guess;
    the decoder that runs next rejects it)."""
    raw = bytes(data) if not isinstance(data, bytes) else data
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    b = np.frombuffer(raw, dtype=np.uint8)
    positions = np.arange(b.size)
    backslash = b == _BACKSLASH
    # Length of the backslash run ending just before each byte: an odd one escapes it.
    last_other = np.maximum.accumulate(np.where(backslash, -1, positions))
    run_before = np.empty(b.size, dtype=np.int64)
    run_before[0] = 0
    run_before[1:] = positions[:-1] - last_other[:-1]
    quote = (b == _QUOTE) & (run_before % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0
    step = (np.isin(b, _OPEN) & outside).astype(np.int32) - (np.isin(b, _CLOSE) & outside)
    return int(np.cumsum(step).max(initial=0))


def check(data: bytes | bytearray | memoryview, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``InvalidRequest`` if ``data`` is not UTF-8 or nests deeper than ``max_depth``."""
    raw = bytes(data) if not isinstance(data, bytes) else data
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequest(f"the body is not UTF-8 (byte {e.start})",
                                 details={"reason": "not_utf8", "position": e.start}) from None
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return
    found = depth(raw)
    if found > max_depth:
        raise InvalidRequest(
            f"JSON nests {found} levels deep; at most {max_depth} are accepted",
            details={"reason": "too_deep", "depth": found, "max_depth": max_depth})
