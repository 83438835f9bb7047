r"""Regular-expression patterns in published JSON Schemas, in the dialect their readers speak.

The contracts validate names with Python's ``re`` and anchor them with ``\Z``, because ``$``
there also accepts a trailing newline (a user named ``"admin\n"``). JSON Schema's ``pattern``
is an ECMA-262 regular expression, in which ``\Z`` is no anchor (a literal ``Z``, or a syntax
error in unicode mode) while ``$`` without the multiline flag matches only at the very end. So
the published documents (OpenAPI, AsyncAPI) carry each pattern with ``$`` for ``\Z`` and ``^``
for ``\A``: the same language, in the readers' dialect.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final

#: ``\Z`` or ``\A`` not itself escaped (an even run of backslashes before it).
_ANCHOR: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\([AZ])")


def to_ecma(pattern: str) -> str:
    return _ANCHOR.sub(lambda m: m.group(1) + ("^" if m.group(2) == "A" else "$"), pattern)


def ecma_patterns(node: Any) -> None:
    """Rewrite every ``pattern`` in a schema tree in place: dicts and lists (a JSON document)
    or dataclasses (Litestar's OpenAPI objects)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                node[key] = to_ecma(value)
            else:
                ecma_patterns(value)
    elif isinstance(node, list | tuple):
        for value in node:
            ecma_patterns(value)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if field.name == "pattern" and isinstance(value, str):
                setattr(node, field.name, to_ecma(value))
            else:
                ecma_patterns(value)
