"""OpenTelemetry set-up and trace-context propagation through NATS headers.

Spans are always created (so logs carry a trace id), but they leave the process only when an
OTLP endpoint is configured (what Jaeger ingests) or a trace file is named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import __version__
from shared.settings import TelemetrySettings

log = logging.getLogger(__name__)

_propagator = TraceContextTextMapPropagator()
_ids = RandomIdGenerator()  # the SDK's default generator: the ids it would have made
#: The flags the SDK gives a trace it starts unsampled (its generator's ids are random).
_NEW_TRACE_FLAGS = TraceFlags(TraceFlags.RANDOM_TRACE_ID if _ids.is_trace_id_random()
                              else TraceFlags.DEFAULT)
# Set by setup_tracing; a process that never sets up tracing (a test, a tool) records when an
# SDK provider is installed, decided on first use.
_RECORDING: list[bool] = [True]
propagate.set_global_textmap(_propagator)

#: Attribute names used on every quantops span, so people can search by them in Jaeger.
ATTR_CORRELATION_ID = "quantops.correlation_id"
ATTR_PRINCIPAL = "quantops.principal"


def setup_tracing(service: str, settings: TelemetrySettings) -> TracerProvider:
    """Install the process-wide tracer provider for ``quantops-<service>``."""
    resource = Resource.create({
        "service.name": f"quantops-{service}",
        "service.version": __version__,
        "service.namespace": "quantops",
    })
    exporters = _exporters(settings)
    # With nowhere to send spans, recording them is pure cost (a third of a request's CPU):
    # non-recording spans still carry trace ids into headers and log lines.
    sampler: Sampler = (ParentBased(TraceIdRatioBased(settings.sample_ratio)) if exporters
                        else ALWAYS_OFF)
    provider = TracerProvider(resource=resource, sampler=sampler)
    _RECORDING[0] = bool(exporters)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    return provider


def _exporters(settings: TelemetrySettings) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        exporters.append(OTLPSpanExporter(endpoint=endpoint))
        log.info("exporting traces over OTLP/HTTP", extra={"endpoint": endpoint})
    if settings.trace_file:
        from shared.tracefile import JsonLinesSpanExporter

        exporters.append(JsonLinesSpanExporter(settings.trace_file))
    return exporters


def span(name: str, attributes: Mapping[str, str | int | float | bool] | None = None,
         *, tracer_name: str = "quantops") -> AbstractContextManager[trace.Span]:
    """A child span of the current context for a step worth seeing in Jaeger (a SQL query, a
    fold, an upload); free when spans go nowhere. Exceptions are recorded on it."""
    if not _RECORDING[0]:
        return nullcontext(trace.INVALID_SPAN)
    return trace.get_tracer(tracer_name).start_as_current_span(name, attributes=attributes)


def current_span(tracer: trace.Tracer, name: str, *, parent: otel_context.Context,
                 kind: SpanKind, attributes: Mapping[str, str]
                 ) -> AbstractContextManager[trace.Span]:
    """A span made current for one request, continuing ``parent`` (extracted from headers).

    When spans go nowhere the SDK makes a non-recording span only after a sampler call and two
    layers of context managers (with the rest of the gateway's tracing layer, a fifth of its CPU
    per request, bench.bench_gateway): the same span is made here directly, with the ids the
    SDK would give it (the caller's trace id, a new span id, unsampled), so logs and downstream
    headers still carry the trace. Attributes would be dropped by such a span anyway.
    """
    if _RECORDING[0]:
        return tracer.start_as_current_span(name, context=parent, kind=kind,
                                            attributes=attributes)
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid:
        trace_id, state = caller.trace_id, caller.trace_state
        flags = TraceFlags(caller.trace_flags & TraceFlags.RANDOM_TRACE_ID)
    else:
        trace_id, state, flags = _ids.generate_trace_id(), None, _NEW_TRACE_FLAGS
    own = SpanContext(trace_id, _ids.generate_span_id(), is_remote=False, trace_flags=flags,
                      trace_state=state)
    return _Current(NonRecordingSpan(own))


class _Current(AbstractContextManager[trace.Span]):
    """``trace.use_span`` for a span that records nothing: made current, and no longer on exit.
    (``use_span`` is a generator context manager that also records exceptions and ends the
    span: for such a span those are no-ops, and the generator alone costs more.)"""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *_: object) -> None:
        otel_context.detach(self._token)


def record_span(name: str, start_ns: int, end_ns: int,
                attributes: Mapping[str, str | int | float | bool] | None = None) -> None:
    """A finished child span with given times: for steps timed in a worker process, which
    exports nothing itself (its parent records what it reports)."""
    if not _RECORDING[0]:
        return
    s = trace.get_tracer("quantops").start_span(name, attributes=attributes, start_time=start_ns)
    s.end(end_time=end_ns)


def recording() -> bool:
    """True when spans go somewhere; the bus skips span work entirely otherwise."""
    provider = trace.get_tracer_provider()
    sampler = getattr(provider, "sampler", None)
    return isinstance(provider, TracerProvider) and sampler is not ALWAYS_OFF


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis=3000)
        provider.shutdown()


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (W3C ``traceparent``, and ``tracestate`` when there is
    one) into outgoing NATS headers, as ``TraceContextTextMapPropagator.inject`` writes them.

    Written here because every bus request does it: the propagator's setter and lookups were
    a fifth of the gateway's tracing cost per request. An empty context holds no span, so there
    is nothing to write (the bus's common case when a service calls on its own)."""
    current = otel_context.get_current()
    if not current:
        return headers
    span = trace.get_current_span(current).get_span_context()
    if span.is_valid:
        headers["traceparent"] = (f"00-{span.trace_id:032x}-{span.span_id:016x}-"
                                  f"{span.trace_flags:02x}")
        if span.trace_state:
            headers["tracestate"] = span.trace_state.to_header()
    return headers


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    return _propagator.extract(headers or {})
