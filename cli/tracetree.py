"""``quantops trace <id>``: print a trace's span tree with timings from the local trace file.

The id may be a trace id or a correlation id (spans carry ``quantops.correlation_id``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from shared.telemetry import ATTR_CORRELATION_ID
from shared.tracefile import SpanRecord, read_spans


def find_trace(spans: list[SpanRecord], ident: str) -> list[SpanRecord]:
    ident = ident.strip().lower()
    trace_ids = {s.trace_id for s in spans
                 if s.trace_id == ident or s.attributes.get(ATTR_CORRELATION_ID) == ident}
    return [s for s in spans if s.trace_id in trace_ids]


def render(spans: list[SpanRecord]) -> list[str]:
    if not spans:
        return []
    by_parent: dict[str, list[SpanRecord]] = defaultdict(list)
    ids = {s.span_id for s in spans}
    for s in spans:
        by_parent[s.parent_id if s.parent_id in ids else ""].append(s)
    t0 = min(s.start_ns for s in spans)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(by_parent.get(parent, []), key=lambda x: x.start_ns):
            offset_ms = (s.start_ns - t0) / 1e6
            took_ms = (s.end_ns - s.start_ns) / 1e6
            mark = " ERROR" if s.status == "ERROR" else ""
            lines.append(f"{offset_ms:>9.2f}ms {took_ms:>9.2f}ms  {'  ' * depth}"
                         f"{s.name}  [{s.service}]{mark}")
            walk(s.span_id, depth + 1)

    walk("", 0)
    return lines


def print_trace(path: Path, ident: str) -> int:
    spans = find_trace(read_spans(path), ident)
    if not spans:
        print(f"no spans for {ident!r} in {path}")
        if not path.exists():
            print("start the system with QUANTOPS_TRACE_FILE=.quantops/traces.jsonl make up "
                  "to record spans locally")
        return 1
    traces = sorted({s.trace_id for s in spans})
    for trace_id in traces:
        print(f"trace {trace_id}")
        print(f"{'start':>11} {'duration':>11}  span")
        for line in render([s for s in spans if s.trace_id == trace_id]):
            print(line)
    return 0
