"""A span exporter that appends finished spans to a JSON-lines file, for tracing without
Jaeger: ``quantops trace <id>`` reads it back as a tree."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class SpanRecord(msgspec.Struct, frozen=True, kw_only=True):
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, object] = {}


class JsonLinesSpanExporter(SpanExporter):
    """Appends one ``SpanRecord`` per line; several processes may share the file (O_APPEND)."""

    def __init__(self, path: str | Path, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = b"".join(self._encoder.encode(_record(s)) + b"\n" for s in spans)
        with self._lock:
            self._rotate()
            with open(self.path, "ab") as f:
                f.write(lines)
        return SpanExportResult.SUCCESS

    def _rotate(self) -> None:
        # One backup is enough for "what just happened"; Jaeger is for history.
        try:
            if self.path.stat().st_size > self.max_bytes:
                self.path.replace(self.path.with_suffix(self.path.suffix + ".1"))
        except FileNotFoundError:
            pass

    def shutdown(self) -> None:
        return None


def _record(span: ReadableSpan) -> SpanRecord:
    ctx = span.get_span_context()
    parent = span.parent
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x") if ctx else "",
        span_id=format(ctx.span_id, "016x") if ctx else "",
        parent_id=format(parent.span_id, "016x") if parent else "",
        name=span.name,
        service=str(span.resource.attributes.get("service.name", "")),
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        status=span.status.status_code.name,
        attributes={k: v if isinstance(v, str | int | float | bool) else str(v)
                    for k, v in (span.attributes or {}).items()},
    )


def read_spans(path: str | Path) -> list[SpanRecord]:
    decoder = msgspec.json.Decoder(SpanRecord)
    p = Path(path)
    if not p.exists():
        return []
    return [decoder.decode(line) for line in p.read_bytes().splitlines() if line.strip()]
