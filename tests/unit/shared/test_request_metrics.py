"""``shared.request_metrics.RequestMetrics`` exposes what prometheus-client's own ``Counter``
and ``Histogram`` of the same names, labels and buckets would, given the same requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from shared.request_metrics import MAX_SERIES, RequestMetrics

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1, 2.5, 10)
REQUESTS = [("svc", "state.kv.get", "ok", 0.0004), ("svc", "state.kv.get", "ok", 0.0005),
            ("svc", "state.kv.get", "not_found", 0.003), ("svc", "state.kv.put", "ok", 0.2),
            ("svc", "state.kv.put", "ok", 11.0), ("svc", "state.kv.get", "ok", 0.001)]


def _exposition(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines()
                  if not line.startswith("#") and "_created" not in line)


def test_the_same_samples_as_prometheus_client_s_counter_and_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    metrics = RequestMetrics("q_requests_total", "requests", "q_request_seconds", "time",
                             labels=("service", "subject"), outcome="code", buckets=BUCKETS,
                             registry=ours)
    counter = Counter("q_requests_total", "requests", ["service", "subject", "code"],
                      registry=theirs)
    histogram = Histogram("q_request_seconds", "time", ["service", "subject"],
                          buckets=BUCKETS, registry=theirs)
    for service, subject, code, seconds in REQUESTS:
        metrics.outcome(service, subject, code).record(seconds)
        counter.labels(service, subject, code).inc()
        histogram.labels(service, subject).observe(seconds)
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("q_requests_total", {
        "service": "svc", "subject": "state.kv.get", "code": "ok"}) == 3


def test_unbounded_label_values_start_over_instead_of_growing() -> None:
    metrics = RequestMetrics("g_total", "g", "g_seconds", "g", labels=("subject",),
                             outcome="code", buckets=BUCKETS, registry=CollectorRegistry())
    for i in range(MAX_SERIES + 10):
        metrics.outcome(f"s.{i}", "ok").record(0.001)
    assert len(metrics._outcomes) <= MAX_SERIES and len(metrics._timings) <= MAX_SERIES
