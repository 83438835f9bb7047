"""ASGI middleware: a server span per HTTP request, the request's correlation id, and the
HTTP metrics (``services.gateway.metrics``).

The correlation id comes from ``X-Correlation-ID`` or is made here; it is set for logs, put on
the span, forwarded in NATS headers by the bus, and returned in the response.
"""

from __future__ import annotations

import re
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.gateway import metrics
from shared import logs, telemetry
from shared.bus import new_correlation_id
from shared.subjects import Header

tracer = trace.get_tracer("quantops.gateway")
_CID_HEADER = Header.CORRELATION_ID.lower().encode()
_CID_NAME = _CID_HEADER.decode()
#: The W3C trace context and the correlation id: all the span and the logs need.
_READ = frozenset({_CID_HEADER, b"traceparent", b"tracestate"})
# A caller's id is echoed into logs and headers: keep it short and printable.
_VALID_CID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")


def tracing_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # Only the headers this layer reads are decoded: it runs on every request.
        raw = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
               if k in _READ}
        cid = raw.get(_CID_NAME, "")
        cid = cid if _VALID_CID.match(cid) else new_correlation_id()
        token = logs.correlation_id.set(cid)
        route = scope.get("path", "")
        started, status, observed = time.perf_counter(), 500, False
        with telemetry.current_span(
            tracer, f"{scope['method']} {route}", parent=telemetry.extract(raw),
            kind=SpanKind.SERVER, attributes={"http.request.method": scope["method"],
                                              "url.path": route,
                                              telemetry.ATTR_CORRELATION_ID: cid},
        ) as span:
            async def send_with_cid(message: Message) -> None:
                nonlocal status, observed
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if _is_event_stream(message):
                        # A stream lives for minutes: its time to headers is what measures
                        # the gateway, and its lifetime would swamp the latency histogram.
                        metrics.observe(scope, status, time.perf_counter() - started)
                        observed = True
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    message["headers"] = [*message.get("headers", []), (_CID_HEADER, cid.encode())]
                await send(message)

            try:
                await app(scope, receive, send_with_cid)
            finally:
                if not observed:
                    metrics.observe(scope, status, time.perf_counter() - started)
                logs.correlation_id.reset(token)

    return middleware


def _is_event_stream(message: HTTPResponseStartEvent) -> bool:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False
