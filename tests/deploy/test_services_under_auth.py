"""The four services, each as its own NATS user with the permissions of ``shared.natsauth`` and
the environment the Helm chart gives its pod: they start, become ready (the chart's own
readiness probes say so), serve real requests end to end, and the server records no
permission violation. This is where a service that starts using a subject, stream or bucket
the model does not grant shows up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.helmchart import containers, render, service_workloads
from tests.deployment import Deployment, deployed
from tests.support import eventually_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployed(tmp_path_factory.mktemp("pods")) as d:
        yield d


def _probes(pods: Deployment) -> dict[str, list[str]]:
    """Each backend's readiness probe command, pointed at its metrics port here."""
    out: dict[str, list[str]] = {}
    for name, workload in service_workloads(render("default")).items():
        if name != "gateway":
            [c] = containers(workload)
            port = pods.metrics_ports[name]
            out[name] = [part.replace(":9100/", f":{port}/")
                         for part in c["readinessProbe"]["exec"]["command"]]
    return out


def _wait_ready(pods: Deployment, timeout_s: float = 60.0) -> httpx.Response:
    last: list[object] = [None]  # what /readyz said last, for the failure message

    def not_ready(why: str) -> AssertionError:
        logs = {n: p.log()[-2000:] for n, p in pods.processes.items()}
        exited = [n for n, p in pods.processes.items() if not p.alive()]
        return AssertionError(f"{why} (exited: {exited}): {last[0]}\n{logs}\n"
                              f"{pods.violations()}")

    def ready() -> httpx.Response | None:
        if not all(p.alive() for p in pods.processes.values()):
            raise not_ready("a pod exited")  # it will not become ready: say why now
        try:
            r = httpx.get(f"{pods.gateway_url}/readyz", timeout=3)
        except httpx.HTTPError as e:
            last[0] = e
            return None
        last[0] = r.text
        return r if r.status_code == 200 else None

    try:
        # 0.1 s apart: under the anonymous rate limit (20/s) of public routes.
        return eventually_sync(ready, timeout_s=timeout_s, interval_s=0.1, what="/readyz 200")
    except TimeoutError:
        raise not_ready(f"not ready in {timeout_s}s") from None


def test_services_become_ready_as_their_own_users(pods: Deployment) -> None:
    ready = _wait_ready(pods).json()
    assert all(s["ok"] for s in ready["services"].values()), ready
    # The chart's readiness probes, run as the kubelet would, against each backend (at once).
    probes = _probes(pods)
    assert sorted(probes) == ["executor", "registry", "state"]
    assert all(command[0] == "python" for command in probes.values())
    running = {name: subprocess.Popen([sys.executable, *command[1:]])
               for name, command in probes.items()}
    for name, probe in running.items():
        assert probe.wait(timeout=30) == 0, f"{name}: readiness probe failed"
    assert pods.violations() == []


def test_requests_flow_end_to_end_without_violations(pods: Deployment) -> None:
    _wait_ready(pods)
    with pods.http() as client:
        put = client.put("/v1/state/deploy/k", json={"value": {"n": 1}})
        assert put.status_code == 200, put.text
        assert client.get("/v1/state/deploy/k").json()["value"] == {"n": 1}
        submitted = client.post("/v1/tasks", json={"type": "noop", "input": {}})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        eventually_sync(lambda: client.get(f"/v1/tasks/{task_id}").json().get("status") ==
                        "succeeded", timeout_s=20, interval_s=0.05,
                        what=f"task {task_id} succeeded")
        assert client.get("/v1/models").status_code == 200
    assert pods.violations() == []
