"""Structured JSON logs: one object a line, with ``correlation_id`` and ``trace_id`` on each.

The correlation id lives in a context variable set by the bus and the gateway for the duration
of a request; the trace id comes from the current OpenTelemetry span.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec
from opentelemetry import trace

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

# Attribute names that must never reach a log line with their value.
_SECRET_WORDS = ("password", "secret", "token", "authorization", "api_key", "apikey")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_encoder = msgspec.json.Encoder(enc_hook=str)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": correlation_id.get(),
            "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else "",
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = "***" if _is_secret(key) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        cid = correlation_id.get()
        line = super().format(record)
        return f"{line} [cid={cid}]" if cid else line


def setup_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # nats-py logs every reconnect attempt at ERROR with a traceback; our callbacks say it once.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def swallowed(log: logging.Logger, what: str, *, level: int = logging.WARNING) -> Iterator[None]:
    """Best effort: an ``Exception`` raised inside is logged, naming ``what`` failed and how,
    and goes no further.

    For clean-up and side effects whose failure must not replace the caller's own outcome (an
    unsubscribe on a closing connection, an event after the durable write). A site that knows
    which exceptions it expects names them with ``contextlib.suppress`` instead. Pass
    ``level=logging.DEBUG`` where the failure is routine (a connection already closed).
    """
    try:
        yield
    except Exception as e:
        log.log(level, "%s failed: %s", what, type(e).__name__, extra={"error": repr(e)[:300]})
