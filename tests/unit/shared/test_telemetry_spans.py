"""``shared.telemetry.current_span`` when spans go nowhere: the span it makes directly has the
ids the SDK would give (the caller's trace, a new span id, unsampled), so logs and the next
hop's ``traceparent`` still name the trace."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import telemetry

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def not_recording(monkeypatch: pytest.MonkeyPatch) -> trace.Tracer:
    monkeypatch.setattr(telemetry, "_RECORDING", [False])
    return TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")


def _span_like_the_sdk(tracer: trace.Tracer, headers: dict[str, str]
                       ) -> tuple[trace.SpanContext, trace.SpanContext, dict[str, str]]:
    parent = telemetry.extract(headers)
    with tracer.start_as_current_span("sdk", context=parent, kind=SpanKind.SERVER) as sdk:
        expected = sdk.get_span_context()
    with telemetry.current_span(tracer, "fast", parent=parent, kind=SpanKind.SERVER,
                                attributes={"a": "b"}) as span:
        ours = span.get_span_context()
        assert trace.get_current_span() is span
        out = telemetry.inject({})
    assert trace.get_current_span() is not span
    return expected, ours, out


def test_a_caller_s_trace_continues(not_recording: trace.Tracer) -> None:
    expected, ours, out = _span_like_the_sdk(not_recording, {"traceparent": CALLER})
    assert ours.trace_id == expected.trace_id == int(CALLER.split("-")[1], 16)
    assert ours.trace_flags == expected.trace_flags and not ours.trace_flags.sampled
    assert ours.span_id not in (expected.span_id, int(CALLER.split("-")[2], 16))
    assert out["traceparent"].split("-")[1:3] == [f"{ours.trace_id:032x}",
                                                  f"{ours.span_id:016x}"]


def test_a_request_without_a_trace_starts_one(not_recording: trace.Tracer) -> None:
    expected, ours, out = _span_like_the_sdk(not_recording, {})
    assert ours.is_valid and ours.trace_id != expected.trace_id
    assert ours.trace_flags == expected.trace_flags and not ours.trace_flags.sampled
    assert out["traceparent"].split("-")[1] == f"{ours.trace_id:032x}"


@pytest.mark.parametrize("incoming", [
    {"traceparent": CALLER},
    {"traceparent": CALLER.replace("-01", "-00")},
    {"traceparent": CALLER, "tracestate": "vendor=abc,other=1"},
    {},
])
def test_inject_writes_what_the_w3c_propagator_writes(incoming: dict[str, str]) -> None:
    """Inside a recorded span and outside any: the same headers as OpenTelemetry's own."""
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span(
            "s", context=telemetry.extract(incoming)):
        theirs: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(theirs)
        assert telemetry.inject({}) == theirs and "traceparent" in theirs
    assert telemetry.inject({}) == {}
