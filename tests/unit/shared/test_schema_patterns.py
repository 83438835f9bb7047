"""``\\Z`` and ``\\A`` become ECMA anchors; escaped backslashes and other escapes stay."""

from __future__ import annotations

import pytest

from shared.schema_patterns import ecma_patterns, to_ecma


@pytest.mark.parametrize(("python", "ecma"), [
    (r"^[a-z]+\Z", r"^[a-z]+$"),
    (r"\A[a-z]+\Z", r"^[a-z]+$"),
    (r"^a\\Z", r"^a\\Z"),  # an escaped backslash, then a literal Z
    (r"^a\\\Z", r"^a\\$"),
    (r"^\d+\.\d+\Z", r"^\d+\.\d+$"),
    (r"^x$", r"^x$"),
])
def test_to_ecma(python: str, ecma: str) -> None:
    assert to_ecma(python) == ecma


def test_ecma_patterns_rewrites_a_document_in_place() -> None:
    doc = {"a": {"pattern": r"^x\Z", "items": [{"pattern": r"^y\Z"}]}, "pattern": {"x": 1}}
    ecma_patterns(doc)
    assert doc == {"a": {"pattern": "^x$", "items": [{"pattern": "^y$"}]}, "pattern": {"x": 1}}
