"""The gateway's HTTP metrics, named as the Grafana dashboard and the alerts read them.

``route`` is the route template Litestar matched (``/v1/state/{namespace}/{key}``), never the
raw path, and ``method`` is one of the HTTP methods the API knows: neither a key nor a junk
method a client sends can grow the label sets.
"""

from __future__ import annotations

from typing import Final

from litestar.types import Scope

from shared.request_metrics import RequestMetrics

#: ``quantops_http_requests_total{method, route, status}`` and
#: ``quantops_http_request_duration_seconds{method, route}``.
HTTP_REQUESTS = RequestMetrics(
    "quantops_http_requests_total",
    "HTTP requests answered by the gateway, by method, route template and status.",
    "quantops_http_request_duration_seconds",
    "Time to answer one HTTP request (event streams: until their headers are sent).",
    labels=("method", "route"), outcome="status",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
#: The label of a request no route matched (404, or refused before routing).
UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The matched route's template; Litestar puts it in the scope once it has routed."""
    template = scope.get("path_template")
    return template if isinstance(template, str) and template else UNMATCHED


def method_of(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "OTHER"


def observe(scope: Scope, status: int, seconds: float) -> None:
    HTTP_REQUESTS.outcome(method_of(scope), route_of(scope), str(status)).record(seconds)
