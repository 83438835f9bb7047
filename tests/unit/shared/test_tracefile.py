"""Spans written to the local trace file come back as a tree by trace or correlation id."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from cli.tracetree import find_trace, render
from shared.telemetry import ATTR_CORRELATION_ID
from shared.tracefile import JsonLinesSpanExporter, read_spans


def test_spans_round_trip_as_a_tree(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "quantops-test"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("POST /v1/tasks", attributes={ATTR_CORRELATION_ID: "c1"}):
        with tracer.start_as_current_span("executor.tasks.submit send"):
            pass
        with tracer.start_as_current_span("run"):
            pass
    with tracer.start_as_current_span("unrelated"):
        pass
    provider.shutdown()

    spans = read_spans(path)
    assert len(spans) == 4
    found = find_trace(spans, "c1")
    assert {s.name for s in found} == {"POST /v1/tasks", "executor.tasks.submit send", "run"}
    assert find_trace(spans, found[0].trace_id) == found
    lines = render(found)
    assert lines[0].endswith("POST /v1/tasks  [quantops-test]")
    assert "  executor.tasks.submit send" in lines[1]  # indented under its parent


def test_rotation_keeps_one_backup(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    exporter = JsonLinesSpanExporter(path, max_bytes=10)
    path.write_text("x" * 100)
    exporter.export([])
    assert (tmp_path / "t.jsonl.1").read_text() == "x" * 100
