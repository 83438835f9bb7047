"""What every route module declares the same way, declared once: the role a route needs
(``opt``) and the paging query parameters, bounded as the contracts bound them.

``Limit`` is the page size of listings (``bounds.MAX_PAGE_ITEMS``); registry searches take
``QueryLimit`` (``bounds.MAX_QUERY_PAGE_ITEMS``: their cost grows with the page). ``Cursor`` is
a page's ``next_cursor`` passed back. A value the contract would refuse is refused here with the
same bound, as a 400 naming the parameter, before anything is sent to a service.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Final

from litestar.params import QueryParameter

from shared.contracts.bounds import MAX_NAME_CHARS, MAX_PAGE_ITEMS, MAX_QUERY_PAGE_ITEMS


def _role(role: str, **extra: Any) -> Mapping[str, Any]:
    # Read-only: Litestar copies ``opt`` into each handler, nothing may change the table.
    return MappingProxyType({"role": role, **extra})


PUBLIC: Final = _role("public")
VIEWER: Final = _role("viewer")
OPERATOR: Final = _role("operator")
ADMIN: Final = _role("admin")
#: An event-stream (SSE) route: viewers may follow it.
STREAM: Final = _role("viewer", stream=True)

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_ITEMS, description="page size")]
QueryLimit = Annotated[int, QueryParameter(ge=1, le=MAX_QUERY_PAGE_ITEMS,
                                           description="page size")]
Cursor = Annotated[str, QueryParameter(max_length=MAX_NAME_CHARS,
                                       description="next_cursor of a page")]
