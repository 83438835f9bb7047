"""Requests counted by outcome and timed, as a Prometheus counter and histogram, kept in plain
Python numbers and turned into samples when Prometheus scrapes.

Every NATS request a service serves and every HTTP request the gateway answers updates both.
prometheus-client takes a lock for each of the three values that changes (the count, the
histogram's bucket and its sum), and on the bus's and the gateway's hot paths those were a
tenth of their own CPU per request (``bench.bench_bus``, ``bench.bench_gateway``). Here the
event loop's thread is the only writer, so a request is three additions; the scrape thread
reads a copy. A scrape may see a histogram's sum one request ahead of or behind its buckets,
which prometheus-client's separate locks allow too.

The exposed metrics are those prometheus-client would expose for a ``Counter`` and a
``Histogram`` of the same names, labels and buckets (``_total``, ``_bucket``/``_count``/
``_sum``), which is what dashboards and alerts read.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

#: Label sets remembered; a caller producing unbounded label values (a wildcard subscription's
#: subjects) starts over rather than grow without end.
MAX_SERIES = 10_000


class Timing:
    """One label set's histogram: a count per bucket (the last is +Inf) and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.sum = 0.0


class Outcome:
    """What one (labels, outcome) records into: its counter and its labels' histogram."""

    __slots__ = ("_bounds", "count", "timing")

    def __init__(self, timing: Timing, bounds: Sequence[float]) -> None:
        self.count = 0
        self.timing = timing
        self._bounds = bounds

    def record(self, seconds: float) -> None:
        self.count += 1
        timing = self.timing
        timing.counts[bisect_left(self._bounds, seconds)] += 1
        timing.sum += seconds


class RequestMetrics(Collector):
    """A counter ``<counter>_total{labels, outcome}`` and a histogram ``<histogram>{labels}``."""

    def __init__(self, counter: str, counter_doc: str, histogram: str, histogram_doc: str, *,
                 labels: Sequence[str], outcome: str, buckets: Sequence[float],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self._counter, self._counter_doc = counter, counter_doc
        self._histogram, self._histogram_doc = histogram, histogram_doc
        self._labels, self._outcome = tuple(labels), outcome
        self._bounds = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))
        self._outcomes: dict[tuple[str, ...], Outcome] = {}
        self._timings: dict[tuple[str, ...], Timing] = {}
        if registry is not None:
            registry.register(self)

    def outcome(self, *key: str) -> Outcome:
        """What to ``record`` a request into: ``key`` is the label values, then the outcome."""
        found = self._outcomes.get(key)
        if found is None:
            if len(key) != len(self._labels) + 1:
                raise ValueError(f"expected values of {(*self._labels, self._outcome)}")
            if len(self._outcomes) >= MAX_SERIES:
                self._outcomes, self._timings = {}, {}
            labels = key[:-1]
            timing = self._timings.get(labels)
            if timing is None:
                timing = self._timings[labels] = Timing(len(self._bounds))
            found = self._outcomes[key] = Outcome(timing, self._bounds)
        return found

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        counter = CounterMetricFamily(self._counter, self._counter_doc,
                                      labels=[*self._labels, self._outcome])
        for key, outcome in list(self._outcomes.items()):
            counter.add_metric(list(key), outcome.count)
        histogram = HistogramMetricFamily(self._histogram, self._histogram_doc,
                                          labels=list(self._labels))
        edges = [*(_le(b) for b in self._bounds), "+Inf"]
        for labels, timing in list(self._timings.items()):
            counts, total, running = list(timing.counts), timing.sum, 0
            cumulative = []
            for edge, n in zip(edges, counts, strict=True):
                running += n
                cumulative.append((edge, float(running)))
            histogram.add_metric(list(labels), cumulative, total)
        yield counter
        yield histogram

    def describe(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        # Names only: the registry refuses a second collector claiming them.
        yield CounterMetricFamily(self._counter, self._counter_doc,
                                  labels=[*self._labels, self._outcome])
        yield HistogramMetricFamily(self._histogram, self._histogram_doc,
                                    labels=list(self._labels))


def _le(bound: float) -> str:
    """A bucket's ``le`` as prometheus-client writes it (``0.005``, ``1.0``)."""
    return repr(float(bound))  # as floatToGoString writes a bucket bound (small, not huge)
