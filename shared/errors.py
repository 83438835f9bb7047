"""The one error model of quantops.

Every reply that fails carries ``{"error": {"code", "message", "details"}}``; ``code`` is the
stable, machine-readable name below. The HTTP status of each code is decided once, in the
gateway (``services/gateway/problems.py``).

    QuantopsError                  internal
    ├── InvalidRequest             invalid_request      bad JSON, wrong types, bad names
    ├── NotFound                   not_found
    ├── Conflict                   conflict             duplicate, illegal state change
    │   └── RevisionConflict       revision_conflict    compare-and-set mismatch
    ├── PayloadTooLarge            payload_too_large    value, artifact or quota limit
    ├── QueueFull                  queue_full           executor backlog guard
    ├── RateLimited                rate_limited
    ├── Unauthenticated            unauthenticated
    ├── Forbidden                  forbidden
    ├── IntegrityError             integrity_error      digest mismatch, corrupted snapshot
    ├── ServiceUnavailable         service_unavailable  nobody answers the subject
    └── ServiceTimeout             timeout              nobody answered in time
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The wire form of an error: what a client reads under ``"error"``."""

    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorBody


class QuantopsError(Exception):
    """Base of every error quantops raises on purpose.

    Args:
        message: one sentence a person can act on.
        details: structured facts (field names, current revision, limits) for programs.
    """

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, details=self.details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class InvalidRequest(QuantopsError):
    code = "invalid_request"


class NotFound(QuantopsError):
    code = "not_found"


class Conflict(QuantopsError):
    code = "conflict"


class RevisionConflict(Conflict):
    code = "revision_conflict"


class PayloadTooLarge(QuantopsError):
    code = "payload_too_large"


class QueueFull(QuantopsError):
    code = "queue_full"


class RateLimited(QuantopsError):
    code = "rate_limited"


class Unauthenticated(QuantopsError):
    code = "unauthenticated"


class Forbidden(QuantopsError):
    code = "forbidden"


class IntegrityError(QuantopsError):
    code = "integrity_error"


class ServiceUnavailable(QuantopsError):
    code = "service_unavailable"


class ServiceTimeout(QuantopsError):
    code = "timeout"


def _all_subclasses(cls: type[QuantopsError]) -> list[type[QuantopsError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


#: The wire <-> exception table: the only place a code is turned back into a class.
ERRORS_BY_CODE: dict[str, type[QuantopsError]] = {c.code: c for c in _all_subclasses(QuantopsError)}


def error_from_body(body: ErrorBody) -> QuantopsError:
    """Rebuild the exception a remote service raised; unknown codes stay readable."""
    cls = ERRORS_BY_CODE.get(body.code, QuantopsError)
    err = cls(body.message, details=dict(body.details))
    if cls is QuantopsError and body.code != QuantopsError.code:
        err.details.setdefault("remote_code", body.code)
    return err


def invalid_from_validation(exc: msgspec.ValidationError | msgspec.DecodeError) -> InvalidRequest:
    """Translate a msgspec decode failure into the wire error a caller can act on."""
    text = str(exc)
    details: dict[str, Any] = {"reason": text}
    # msgspec ends messages with "- at `$.field`": surface the path on its own for programs.
    if " - at `" in text:
        reason, _, path = text.rpartition(" - at `")
        details = {"reason": reason, "path": path.rstrip("`")}
    kind = "malformed JSON" if isinstance(exc, msgspec.DecodeError) and not isinstance(
        exc, msgspec.ValidationError
    ) else "invalid request"
    return InvalidRequest(f"{kind}: {text}", details=details)
