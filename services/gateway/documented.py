"""What each operation is documented to answer, beyond its own success response.

Every error a route can return is declared in the OpenAPI document, decided here by what the
route is rather than route by route: the guard's answers (400, 401, 403, 429), a missing
resource (404) on every ``/v1`` route (a model, task or key named in the path or the body),
conflicts and oversize bodies on writes (409, 413), and the NATS hop (503, 504). Schemathesis
checks the document against the live answers (``tests/fuzz``).

Event-stream routes are declared ``text/event-stream``: Litestar documents a
``ServerSentEvent`` return as JSON.
"""

from __future__ import annotations

from typing import Final

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec

from services.gateway.auth.roles import PUBLIC
from services.gateway.problems import PROBLEM_JSON, Problem

#: Either header works on every route that is not public.
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
SSE: Final = "text/event-stream"
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_JSON,
                        generate_examples=False)


_EVERY = {400: problem("Invalid request: bad JSON, wrong types, unknown fields, out of range"),
          429: problem("Rate limited; see Retry-After")}
_CREDENTIALS = {401: problem("Missing, invalid, expired or revoked credentials")}
_ROLE = {403: problem("The caller's role is too weak")}
_SERVICES = {404: problem("What the request names does not exist"),
             422: problem("Stored bytes failed verification (digest, size, snapshot check)"),
             503: problem("The service behind this route does not answer; retry"),
             504: problem("The service behind this route did not answer in time")}
_WRITE = {409: problem("Conflicts with the current state (duplicate, illegal change)"),
          413: problem("Body, value or quota over its limit")}


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One Server-Sent Event as a client's parser yields it (``data`` is JSON on data events,
    empty on keep-alives)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


_STREAM = ResponseSpec(data_container=Event, media_type=SSE, generate_examples=False,
                       description="Server-Sent Events, until the client disconnects")


def responses_of(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """The error responses ``handler`` may give, by what it is."""
    public = handler.opt.get("role") == PUBLIC
    path = next(iter(handler.paths), "")
    out = dict(_EVERY)
    if not public or path.startswith("/v1/auth/"):
        out |= _CREDENTIALS
    if not public:
        out |= _ROLE
    if path.startswith("/v1/"):
        out |= _SERVICES
        if handler.http_methods & _WRITES:
            out |= _WRITE
    return out


def declare(handlers: list[BaseRouteHandler]) -> None:
    """Security and error responses of every operation; event streams as such."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler):
            continue
        if handler.opt.get("role") != PUBLIC:
            handler.security = SECURITY
        own = dict(handler.responses or {})
        if handler.opt.get("stream"):
            own.setdefault(200, _STREAM)
        handler.responses = {**responses_of(handler), **own}
