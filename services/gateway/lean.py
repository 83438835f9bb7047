"""Lean routes: a route's common case answered without Litestar's handler machinery.

Reading a key is what a strategy does in its loop, and for that request the framework's
handler machinery (parameter parsing and validation, the signature model, response objects)
cost more than everything else the gateway does (``bench.bench_gateway``). A route may declare a
lean version of itself, ``opt={"lean": fn}``, beside its ordinary handler, which stays the
route's definition: its OpenAPI entry, and the answer to every request the lean version does
not take.

``fn(scope, send)`` runs here, after Litestar has routed the request (``path_params``) and the
guard has authenticated and authorised it against the route's role: both exactly as for any
route. It answers only a request it understands completely and returns True; otherwise it sends
nothing and returns False, and the route's handler runs as usual. What it raises is what the
handler would raise, rendered by the app's exception handlers as problem+json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

#: The ``opt`` key a route's lean version is declared under.
LEAN: Final = "lean"
Lean = Callable[[HTTPScope, Send], Awaitable[bool]]


def lean_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            lean: Lean | None = scope["route_handler"].opt.get(LEAN)
            if lean is not None and await lean(scope, send):
                return
        await app(scope, receive, send)

    return middleware


def header(scope: HTTPScope, name: bytes) -> bytes | None:
    """The one value of header ``name`` (lower case); None when absent. A header sent twice
    raises ``Repeated``: the lean version declines, and the handler decides."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            if found is not None:
                raise Repeated
            found = value
    return found


class Repeated(Exception):
    """A header the lean version reads came more than once."""


def json_response(status: int, body: bytes, headers: list[tuple[bytes, bytes]]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two ASGI messages of a JSON response, headers as Litestar writes them (a 304 has
    neither a type nor a length)."""
    head = list(headers)
    if status != 304:
        head += ((b"content-type", b"application/json"),
                 (b"content-length", b"%d" % len(body)))
    return ({"type": "http.response.start", "status": status, "headers": head},
            {"type": "http.response.body", "body": body})
