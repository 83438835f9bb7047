"""Render the Helm chart once per values set (the real Helm library, offline) and pick the
pieces the deploy tests look at."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.support import ROOT

CHART = ROOT / "deploy" / "helm" / "quantops"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
RELEASE = "qo"
NAMESPACE = "quant"
EXTERNAL_URL = "nats://nats.messaging.svc.cluster.local:4222"
COMPONENTS = ("gateway", "executor", "state", "registry")

#: The values sets every structural test runs against.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "production": yaml.safe_load(PRODUCTION_VALUES.read_text()),
    "external-nats": {"nats": {"external": {"url": EXTERNAL_URL}}},
}


@functools.cache
def render(values_name: str) -> tuple[dict[str, Any], ...]:
    """Every object the chart renders with one values set (rendered once per session)."""
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(VALUE_SETS[values_name], name=RELEASE, namespace=NAMESPACE)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return tuple(docs)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: tuple[dict[str, Any], ...], kind: str, suffix: str) -> dict[str, Any]:
    """The one ``kind`` whose name is ``<release>-quantops-<suffix>``."""
    name = f"{RELEASE}-quantops-{suffix}"
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: found {len(found)}"
    return found[0]


def workloads(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def component(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def service_workloads(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """The four quantops services' workloads by component (NATS excluded)."""
    return {component(w): w for w in workloads(docs) if component(w) in COMPONENTS}


def containers(workload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def nats_config(docs: tuple[dict[str, Any], ...]) -> str:
    return str(named(docs, "ConfigMap", "nats-config")["data"]["nats.conf"])


def authorization_block(conf: str) -> str:
    """The ``authorization { ... }`` block of a rendered nats.conf."""
    match = re.search(r"^ *authorization \{\n.*?^ *\}\n", conf, flags=re.S | re.M)
    assert match, "no authorization block in the rendered nats.conf"
    return match.group(0)


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())  # type: ignore[no-any-return]


def repo_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
