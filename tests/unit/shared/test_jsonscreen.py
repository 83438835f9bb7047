"""The depth scan that runs before any JSON decoder (issue 14, case 3)."""

from __future__ import annotations

import pytest

from shared import jsonscreen
from shared.errors import InvalidRequest


@pytest.mark.parametrize(("text", "expected"), [
    (b"", 0), (b"1", 0), (b"{}", 1), (b"[[]]", 2), (b'{"a": [1, {"b": [[]]}]}', 5),
    (b'["[[[[", "]]"]', 1),  # brackets inside strings do not count
    (b'["\\"[[[", 1]', 1),  # an escaped quote does not end the string
    (b'["\\\\", [[]]]', 3),  # an escaped backslash does not escape the quote after it
    (b"]]]][[", 0),  # malformed: a best guess, the decoder rejects it next
])
def test_depth_counts_brackets_outside_strings(text: bytes, expected: int) -> None:
    assert jsonscreen.depth(text) == expected


def test_deep_documents_are_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequest) as e:
        jsonscreen.check(b"[" * 50_000 + b"]" * 50_000)
    assert e.value.details == {"reason": "too_deep", "depth": 50_000,
                               "max_depth": jsonscreen.MAX_DEPTH}
    jsonscreen.check(b"[" * jsonscreen.MAX_DEPTH + b"]" * jsonscreen.MAX_DEPTH)


def test_many_shallow_brackets_pass() -> None:
    jsonscreen.check(b"[" + b"[1]," * 100_000 + b"[]]")
    jsonscreen.check(b'{"s": "' + b"[" * 10_000 + b'"}')  # inside a string


@pytest.mark.parametrize("body", [b'{"a": "\xff\xfe"}', b'{"\xff": 1}', b"\xc3\x28"])
def test_invalid_utf8_is_refused_even_where_a_decoder_would_skip_it(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as e:
        jsonscreen.check(body)
    assert e.value.details["reason"] == "not_utf8"
    jsonscreen.check('{"a": "é ✓"}'.encode())
