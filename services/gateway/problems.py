"""Errors at the HTTP edge: each wire code's status, decided once, as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from shared import errors
from shared.logs import correlation_id

#: The only place a wire error code becomes an HTTP status.
HTTP_STATUS: dict[str, int] = {
    errors.InvalidRequest.code: 400,
    errors.Unauthenticated.code: 401,
    errors.Forbidden.code: 403,
    errors.NotFound.code: 404,
    errors.Conflict.code: 409,
    errors.RevisionConflict.code: 412,
    errors.PayloadTooLarge.code: 413,
    errors.QueueFull.code: 429,
    errors.RateLimited.code: 429,
    # Bytes that fail verification (an uploaded snapshot, an artifact corrupted at rest): no
    # retry can help, so not a 5xx; operators see the code in quantops_requests_total.
    errors.IntegrityError.code: 422,
    errors.QuantopsError.code: 500,
    errors.ServiceUnavailable.code: 503,
    errors.ServiceTimeout.code: 504,
}
PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every error response (RFC 9457 plus ``code``, ``details``, correlation id);
    declared in the OpenAPI document, built by ``problem`` below."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    details: dict[str, Any]
    correlation_id: str

#: RFC 6750 challenge on every 401: how to authenticate, and whether what came was refused.
_CHALLENGE = 'Bearer realm="quantops"'
_CHALLENGE_INVALID = _CHALLENGE + ', error="invalid_token"'


def problem(
    request: Request[Any, Any, Any], code: str, message: str, details: dict[str, Any],
    status: int | None = None, headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    status = status or HTTP_STATUS.get(code, 500)
    body = {
        "type": f"https://quantops.dev/errors/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": message,
        "instance": request.url.path,
        "code": code,
        "details": details,
        "correlation_id": correlation_id.get(),
    }
    out = dict(headers or {})
    if status in (429, 503) and "retry_after_s" in details:
        out["Retry-After"] = str(max(1, int(float(details["retry_after_s"]) + 0.999)))
    elif status == 429:
        out.setdefault("Retry-After", "1")
    if status == 401:
        invalid = details.get("reason") == "invalid_credentials"
        out.setdefault("WWW-Authenticate", _CHALLENGE_INVALID if invalid else _CHALLENGE)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=out)


def on_quantops_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, errors.QuantopsError)
    return problem(request, exc.code, exc.message, exc.details)


def on_http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (bad body, unknown route, 413) in the same problem+json shape."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        code = errors.InvalidRequest.code
        details: dict[str, Any] = {"errors": exc.extra} if exc.extra else {}
    elif isinstance(exc, NotFoundException):
        code, details = errors.NotFound.code, {}
    else:
        code = {401: "unauthenticated", 403: "forbidden", 405: "method_not_allowed",
                413: "payload_too_large", 429: "rate_limited"}.get(status, "invalid_request")
        details = {}
        if status >= 500:
            code = "internal"
    return problem(request, code, str(exc.detail), details, status=status,
                   headers=dict(exc.headers or {}))


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    import logging

    logging.getLogger(__name__).exception("unhandled error in gateway")
    return problem(request, "internal", "internal error", {"type": type(exc).__name__})


EXCEPTION_HANDLERS = {
    errors.QuantopsError: on_quantops_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
