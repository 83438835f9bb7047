"""A real OTLP/HTTP trace receiver for tests: decodes ``ExportTraceServiceRequest`` protobufs
(gzip too) exactly as Jaeger's OTLP endpoint would receive them."""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: int
    attributes: dict[str, object] = field(default_factory=dict)


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._ingest(ExportTraceServiceRequest.FromString(body))
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # shutdown() stops serving but leaves the socket open

    def _ingest(self, request: ExportTraceServiceRequest) -> None:
        out: list[ReceivedSpan] = []
        for rs in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
            service = attrs.get("service.name", "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(ReceivedSpan(
                        trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(), name=s.name, service=service,
                        kind=s.kind,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                    ))
        with self._lock:
            self.spans.extend(out)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool],
                 timeout_s: float = 10.0) -> list[ReceivedSpan]:
        """The spans once ``predicate(spans)`` holds (exporters batch, so spans arrive late).

        On timeout it returns what arrived: the caller's assertions then say what is missing.
        """
        from tests.support import eventually_sync  # here: tests.support imports this module

        def snapshot() -> list[ReceivedSpan]:
            with self._lock:
                return list(self.spans)

        with contextlib.suppress(TimeoutError):  # reported by the caller's assertions
            eventually_sync(lambda: predicate(snapshot()), timeout_s=timeout_s,
                            interval_s=0.1, what="the awaited spans")
        return snapshot()


def _value(v: object) -> object:
    kind = v.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(v, kind) if kind else None
