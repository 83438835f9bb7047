"""The Grafana dashboard and the Prometheus alerts: the metric names they use are the ones the
code declares (the running-system check uses ``metricnames`` too), their PromQL is valid and
the alerts fire when they should (promtool, when installed: Debian package ``prometheus``)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tests.deploy.metricnames import (
    ALERTS,
    DASHBOARD,
    alert_expressions,
    dashboard_expressions,
    deploy_metric_names,
    exported_metric_names,
    metric_names,
)
from tests.support import ROOT

#: Used by the dashboard and alerts but not declared by any module yet. Empty: every name is
#: declared (the gateway's HTTP metrics live in ``services/gateway/metrics.py``); a name added
#: here leaves as soon as the code declares it (the test below then requires it).
ASSUMED: set[str] = set()

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="promtool not installed "
                                    "(apt-get install prometheus)")


def test_metric_names_of_tricky_expressions() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, subject) (rate('
            'quantops_request_duration_seconds_bucket{namespace=~"$namespace", '
            'service="state", code!~"ok|x"}[$__rate_interval]))) / on() group_left '
            'sum(quantops_up offset 5m) > bool 1e3 and absent(quantops_up{service="a"})')
    assert metric_names(expr) == {"quantops_request_duration_seconds_bucket", "quantops_up"}
    assert metric_names("label_values(quantops_up, namespace)") == {"quantops_up"}


def test_deploy_metric_names_covers_both_files() -> None:
    names = deploy_metric_names()
    assert {"quantops_up", "quantops_executor_queue_depth",
            "quantops_executor_dead_letters_total", "quantops_state_conflicts_total",
            "quantops_requests_total"} <= names
    # Only the services' own metrics: a running quantops exports them, with no exporter or
    # Kubernetes metric needed (so the running-system test can check every one).
    assert all(n.startswith("quantops_") for n in names), sorted(names)


def test_exported_names_include_declared_families_and_histogram_parts() -> None:
    registry = CollectorRegistry()
    Counter("quantops_a_total", "a", ["type"], registry=registry)  # no child yet
    Gauge("quantops_b", "b", registry=registry).set(1)
    Histogram("quantops_c_seconds", "c", ["type"], registry=registry)
    names = exported_metric_names(generate_latest(registry).decode())
    assert {"quantops_a_total", "quantops_b", "quantops_c_seconds_bucket",
            "quantops_c_seconds_count", "quantops_c_seconds_sum"} <= names
    assert "quantops_d" not in names


def test_every_metric_used_is_declared_by_the_code() -> None:
    # Static half of the check (the lead's running-system test is the dynamic half): import
    # every metrics module and read the default registry's exposition.
    modules = ["shared.metrics"] + [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / "services").glob("*/metrics.py"))
        if "prometheus_client" in p.read_text()]
    for name in modules:
        importlib.import_module(name)
    exported = exported_metric_names(generate_latest(REGISTRY).decode())
    missing = deploy_metric_names() - exported
    assert missing <= ASSUMED, f"not declared by {modules}: {sorted(missing - ASSUMED)}"


def test_dashboard_is_well_formed() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("queue depth", "duration", "dead letters", "registry", "conflicts",
                  "latency", "5xx", "utilisation"):
        assert topic in titles


def test_alerts_cover_the_failure_modes() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"QuantopsServiceDown", "QuantopsQueueBacklogGrowing", "QuantopsDeadLetters",
            "QuantopsHighErrorRate", "QuantopsExecutorStalled"} <= names
    for r in rules:
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]


@needs_promtool
def test_alert_rules_are_valid() -> None:
    out = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_alerts_fire_when_they_should() -> None:
    tests = ALERTS.with_name("alerts_test.yaml")
    out = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True,
                         text=True, timeout=60, cwd=tests.parent)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # Grafana's variables replaced by what they expand to, each query checked as a rule.
    exprs = [e.replace("$__rate_interval", "5m").replace("$namespace", ".*")
             for e in dashboard_expressions() if "label_values" not in e]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"quantops:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(exprs) >= 25 and alert_expressions()
