"""Metric names used by the Grafana dashboard and the Prometheus alerts, and names exported on a
``/metrics`` page, so "every metric the dashboard and alerts use is exported" is one line:

    assert deploy_metric_names() <= exported_metric_names(page_text)

(with ``page_text`` the concatenated ``/metrics`` pages of a running system).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.support import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "quantops-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

# Everything in a PromQL expression that is a name but not a metric.
_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta",
    "deriv", "exp", "floor", "group", "histogram_quantile", "idelta", "increase", "irate",
    "label_join", "label_replace", "label_values", "last_over_time", "ln", "log2", "log10",
    "max", "max_over_time", "min", "min_over_time", "predict_linear", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sqrt", "stddev", "stddev_over_time", "stdvar", "sum", "sum_over_time", "time",
    "timestamp", "topk", "vector",
}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "bool", "offset", "inf", "nan"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPINGS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _strings_under(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from _strings_under(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _strings_under(item, key)


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = list(_strings_under(board["panels"], "expr"))
    # Query variables read metrics too (label_values(quantops_up, namespace)).
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana query) reads."""
    text = expr.replace("$__rate_interval", "5m")
    text = _STRINGS.sub("", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPINGS.sub("", text)
    text = re.sub(r"\$\w+", "", text)  # other Grafana variables
    text = re.sub(r"\b\d+(ms|s|m|h|d|w|y)\b", "", text)  # durations (offset 5m)
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?([eE][+-]?\d+)?", "", text)  # numbers
    names = set(_NAME.findall(text))
    # label_values(metric, label): the second argument is a label.
    for m in re.finditer(r"label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)", expr):
        names.discard(m.group(2))
    return {n for n in names if n.lower() not in _FUNCTIONS | _KEYWORDS}


def deploy_metric_names() -> set[str]:
    """Every metric (sample) name the dashboard and the alert rules use."""
    names: set[str] = set()
    for expr in dashboard_expressions() + alert_expressions():
        names |= metric_names(expr)
    return names


def exported_metric_names(page: str) -> set[str]:
    """Sample names a ``/metrics`` page exports, declared families included.

    prometheus_client writes ``# TYPE`` for a labelled metric before any child exists (no task
    dead-lettered yet), so a family counts as exported from its declaration: a dashboard may
    rightly show it as empty. A histogram family exports its ``_bucket``, ``_sum``, ``_count``.
    """
    names: set[str] = set()
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind.strip() in ("histogram", "summary"):
                names |= {name + s for s in _HISTOGRAM_SUFFIXES}
        elif line and not line.startswith("#"):
            names.add(_NAME.match(line).group(0))  # type: ignore[union-attr]
    return names
