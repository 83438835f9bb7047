"""Translate an HTTP call into a NATS request: the only way routes talk to services."""

from __future__ import annotations

from typing import Any, TypeVar

from litestar import Request, Response
from litestar.types import Scope

from services.gateway.auth.roles import Principal
from shared.bus import Bus, encode
from shared.logs import correlation_id
from shared.subjects import Header

T = TypeVar("T")
# Plain strings, read once: an enum member's ``.value`` is a property call, four per request.
_CID, _PRINCIPAL = Header.CORRELATION_ID.value, Header.PRINCIPAL.value
_ROLE, _AUTH = Header.ROLE.value, Header.AUTH.value


def bus_of(request: Request[Any, Any, Any]) -> Bus:
    return request.app.state.bus  # type: ignore[no-any-return]


def nats_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Correlation id and principal travel with every request the gateway makes; the bus
    token (``shared.bustokens``) is what services believe: the principal the guard
    authenticated, with the role of this request (a capped key's, not its owner's)."""
    return headers_for(request.scope, bus_of(request))


def headers_for(scope: Scope, bus: Bus) -> dict[str, str]:
    """``nats_headers`` from the ASGI scope (a lean route has no ``Request``)."""
    headers = {_CID: correlation_id.get()}
    principal = scope.get("quantops_principal")
    if isinstance(principal, Principal):  # set by the guard on every non-public route
        headers[_PRINCIPAL] = principal.name
        headers[_ROLE] = principal.role
        if token := bus.token_for(principal.name, principal.role):
            headers[_AUTH] = token
    return headers


async def call(
    request: Request[Any, Any, Any], subject: str, body: Any, response_type: type[T],
    *, timeout_s: float | None = None,
) -> T:
    """A typed request to a service; errors propagate as ``QuantopsError`` (problem+json)."""
    return await bus_of(request).request(subject, body, response_type, timeout_s=timeout_s,
                                         headers=nats_headers(request))


async def call_raw(request: Request[Any, Any, Any], subject: str, body: Any, *,
                   timeout_s: float | None = None) -> bytes:
    """A service's JSON reply, not decoded: for a route that answers with it as it is."""
    data, _ = await bus_of(request).request_raw(subject, encode(body), timeout_s=timeout_s,
                                                headers=nats_headers(request))
    return data


async def forward(
    request: Request[Any, Any, Any], subject: str, body: Any, *, status_code: int = 200,
    timeout_s: float | None = None, headers: dict[str, str] | None = None,
) -> Response[Any]:
    """Pass the service's JSON reply through untouched (no decode and re-encode)."""
    data, _ = await bus_of(request).request_raw(subject, encode(body), timeout_s=timeout_s,
                                                headers=nats_headers(request))
    return Response(content=data, status_code=status_code, media_type="application/json",
                    headers=headers)
