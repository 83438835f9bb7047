"""HTTP error answers back into the ``shared.errors`` exceptions the services raised.

The gateway answers every error as RFC 9457 problem+json carrying the wire ``code``: that code
picks the class (``ERRORS_BY_CODE``), exactly as a NATS caller would get it. An answer that is
not problem+json (a proxy's 502 page) is classified by its status alone. Either way the
exception's ``details`` keep ``http_status`` and ``correlation_id`` for the caller to quote.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from shared import errors


class ProblemBody(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a problem document the client reads (others are ignored)."""

    code: str = ""
    title: str = ""
    detail: str = ""
    details: dict[str, Any] = {}
    correlation_id: str = ""


_decode_problem = msgspec.json.Decoder(ProblemBody).decode
#: When a body names no code we know: the class a status stands for.
BY_STATUS: dict[int, type[errors.QuantopsError]] = {
    400: errors.InvalidRequest, 401: errors.Unauthenticated, 403: errors.Forbidden,
    404: errors.NotFound, 405: errors.InvalidRequest, 409: errors.Conflict,
    412: errors.RevisionConflict, 413: errors.PayloadTooLarge, 429: errors.RateLimited,
    502: errors.ServiceUnavailable, 503: errors.ServiceUnavailable, 504: errors.ServiceTimeout,
}
CORRELATION_HEADER = "x-correlation-id"


def error_from_response(status: int, headers: httpx.Headers, body: bytes) -> errors.QuantopsError:
    """The exception an error response stands for."""
    try:
        problem = _decode_problem(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body[:200].decode("utf-8", "replace").strip()
        problem = ProblemBody(detail=text or f"HTTP {status}")
    cls = errors.ERRORS_BY_CODE.get(problem.code) or BY_STATUS.get(status, errors.QuantopsError)
    details = dict(problem.details)
    if problem.code and problem.code not in errors.ERRORS_BY_CODE:
        details.setdefault("remote_code", problem.code)
    details["http_status"] = status
    details["correlation_id"] = problem.correlation_id or headers.get(CORRELATION_HEADER, "")
    retry_after = headers.get("retry-after")
    if retry_after and retry_after.isdigit():
        details.setdefault("retry_after_s", float(retry_after))
    return cls(problem.detail or problem.title or f"HTTP {status}", details=details)


def transport_error(exc: httpx.TransportError, base_url: str) -> errors.QuantopsError:
    """A failure below HTTP (refused, reset, timed out) as the error a service call would get."""
    if isinstance(exc, httpx.TimeoutException):
        return errors.ServiceTimeout(f"the gateway at {base_url} did not answer in time",
                                     details={"reason": type(exc).__name__})
    return errors.ServiceUnavailable(f"the gateway at {base_url} is not reachable: {exc}",
                                     details={"reason": type(exc).__name__})


def unexpected_body(exc: Exception, status: int, path: str) -> errors.QuantopsError:
    """A 2xx body that does not match its contract: a client and gateway out of step."""
    return errors.QuantopsError(f"unexpected response from {path}: {exc}",
                                details={"http_status": status, "path": path})
