"""Names are matched whole: a trailing newline (``admin\\n``) is not the name ``admin``.

Python's ``$`` also matches before a final newline, and msgspec's ``pattern`` searches with
it; every name pattern ends in ``\\Z`` (or is matched with ``fullmatch``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import msgspec
import pytest

from shared.contracts.auth import UserCreate
from shared.contracts.executor import SubmitTask

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bad", ["admin\n", "admin\r\n", "ok\n"])
def test_trailing_newline_is_refused(bad: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"name": bad, "role": "viewer"}, UserCreate)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"type": bad}, SubmitTask)


def test_no_pattern_ends_in_a_bare_dollar() -> None:
    """A regex literal whose alternatives end in ``$`` lets a trailing newline through."""
    files = subprocess.run(["git", "ls-files", "services", "shared", "cli", "quant"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    literal = re.compile(r'(?<![A-Za-z_])r"((?:[^"\\\n]|\\.)*)"')
    offenders = []
    for name in files:
        if not name.endswith(".py"):
            continue
        for m in literal.finditer((ROOT / name).read_text()):
            body = m.group(1)
            if re.search(r'(?<!\\)\$(\)*\||\)*$)', body) and body.startswith("^"):
                offenders.append(f"{name}: {body}")
    assert offenders == []
