"""Prometheus metrics of the state service, by namespace.

The hot path only adds to plain dicts; ``flush`` (called every second by the service) moves the
sums into the Prometheus counters. A counter update costs a label lookup and a lock, several
microseconds, which on a cached read is as much as the read itself; scrapes come every 15 s or
so, so a second of delay is invisible.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client import Counter, Gauge

OPERATIONS = Counter(
    "quantops_state_operations_total",
    "State operations by namespace, operation and outcome ('ok' or an error code).",
    ["namespace", "operation", "outcome"],
)
CONFLICTS = Counter(
    "quantops_state_conflicts_total", "Compare-and-set conflicts by namespace.", ["namespace"])
BYTES_WRITTEN = Counter(
    "quantops_state_bytes_written_total",
    "JSON bytes of values written, by namespace (before compression).", ["namespace"])
BYTES_READ = Counter(
    "quantops_state_bytes_read_total", "JSON bytes of values read, by namespace.", ["namespace"])
CACHE_READS = Counter(
    "quantops_state_cache_reads_total",
    "Reads by where they were answered from: 'cache' or 'jetstream'.", ["source"])
NAMESPACE_BYTES = Gauge(
    "quantops_state_namespace_bytes", "JSON bytes of live values, by namespace.", ["namespace"])
NAMESPACE_KEYS = Gauge(
    "quantops_state_namespace_keys", "Live keys, by namespace.", ["namespace"])

_operations: defaultdict[tuple[str, str, str], int] = defaultdict(int)
_conflicts: defaultdict[str, int] = defaultdict(int)
_written: defaultdict[str, int] = defaultdict(int)
_read: defaultdict[str, int] = defaultdict(int)
_sources: defaultdict[str, int] = defaultdict(int)


def operation(namespace: str, op: str, outcome: str = "ok") -> None:
    _operations[(namespace, op, outcome)] += 1


def conflict(namespace: str) -> None:
    _conflicts[namespace] += 1


def written(namespace: str, size: int) -> None:
    _written[namespace] += size


def read(namespace: str, size: int, *, cached: bool) -> None:
    _read[namespace] += size
    _sources["cache" if cached else "jetstream"] += 1


def usage(namespace: str, keys: int, size: int) -> None:
    NAMESPACE_KEYS.labels(namespace).set(keys)
    NAMESPACE_BYTES.labels(namespace).set(size)


def flush() -> None:
    """Move what the hot path counted into the Prometheus counters."""
    for labels, n in _drain(_operations):
        OPERATIONS.labels(*labels).inc(n)
    for metric, counts in ((CONFLICTS, _conflicts), (BYTES_WRITTEN, _written),
                           (BYTES_READ, _read), (CACHE_READS, _sources)):
        for label, n in _drain(counts):
            metric.labels(label).inc(n)


def _drain(counts: defaultdict[str, int] | defaultdict[tuple[str, str, str], int]
           ) -> list[tuple[Any, int]]:
    items = list(counts.items())
    counts.clear()
    return items
