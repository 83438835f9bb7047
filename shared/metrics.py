"""Prometheus metrics every service shares, and the per-process metrics endpoint."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, start_http_server

from shared.request_metrics import RequestMetrics

log = logging.getLogger(__name__)

#: ``quantops_requests_total{service, subject, code}`` and
#: ``quantops_request_duration_seconds{service, subject}``.
REQUESTS = RequestMetrics(
    "quantops_requests_total",
    "Requests handled over NATS, by subject and outcome code ('ok' or an error code).",
    "quantops_request_duration_seconds",
    "Time to handle one NATS request, decode to reply.",
    labels=("service", "subject"), outcome="code",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UP = Gauge("quantops_up", "1 while the service is connected to NATS.", ["service"])
NATS_RECONNECTS = Counter(
    "quantops_nats_reconnects_total", "Reconnections to NATS.", ["service"]
)

# Storage, refreshed by shared.storage.StorageProbe in every service.
DATA_FREE = Gauge("quantops_data_dir_free_bytes",
                  "Free bytes on the file system of the service's data directory.", ["service"])
DATA_SIZE = Gauge("quantops_data_dir_size_bytes",
                  "Size of the file system of the service's data directory.", ["service"])
JS_USED = Gauge("quantops_jetstream_storage_used_bytes",
                "JetStream file storage used by the service's account.", ["service"])
JS_RESERVED = Gauge("quantops_jetstream_storage_reserved_bytes",
                    "JetStream file storage reservation: the account's max_storage, else the "
                    "server's max_file_store (QUANTOPS_NATS_MAX_FILE_STORE).", ["service"])


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:
    """Expose /metrics; port 0 picks a free one. Returns the port actually bound."""
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_address[1])
    log.info("metrics endpoint up", extra={"metrics_port": bound})
    return bound
