"""The bounds every wire number, string and list is declared with.

A contract field without a bound is an invitation: a ``schema_version`` of 2**53 made the
state service walk a range that size, an ``If-Match`` of 2**64 wrapped to "no check" inside
JetStream. Every field names one of these types (or its own ``msgspec.Meta``), so a decoder
refuses out-of-range input before any handler runs; ``tests/unit/catalog`` walks every
request Struct and fails on a field left unbounded.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

#: JavaScript's ``Number.MAX_SAFE_INTEGER``: the largest integer every JSON reader keeps
#: exact, and far beyond any JetStream sequence a deployment reaches.
MAX_SAFE_INT: Final = 2**53 - 1
#: Schema versions a namespace may declare; migrations are written by hand, one per step.
MAX_SCHEMA_VERSION: Final = 1000
#: Names: namespaces, keys, models, aliases, users, snapshot and dataset names, ids.
MAX_NAME_CHARS: Final = 512
#: Free text: descriptions, reasons, messages.
MAX_TEXT_CHARS: Final = 4096
#: Items of a list or entries of a map in one request.
MAX_ITEMS: Final = 10_000
#: Seconds any duration may name (ten years).
MAX_SECONDS: Final = 10 * 365 * 24 * 3600

Revision = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
SchemaVersion = Annotated[int, msgspec.Meta(ge=1, le=MAX_SCHEMA_VERSION)]
Seconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_SECONDS)]
FloatSeconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)]
Bytes = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]
#: Items one page of a listing holds (``limit`` of every ``List*`` request, HTTP ``?limit=``).
MAX_PAGE_ITEMS: Final = 1000
#: Items one page of a registry search holds: walking a sort index costs ``limit /
#: selectivity`` steps (``services/registry/query.py``), so its pages are smaller.
MAX_QUERY_PAGE_ITEMS: Final = 100
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_ITEMS)]
QueryPageLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUERY_PAGE_ITEMS)]
#: A page's ``next_cursor``, passed back unchanged for the next page.
Cursor = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
#: Any finite number (a metric): JSON's 1e999 decodes as infinity, refused here.
Finite = Annotated[float, msgspec.Meta(ge=-1e300, le=1e300)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
