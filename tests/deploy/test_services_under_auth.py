"""The four services, each as its own NATS user with the permissions of ``shared.natsauth`` and
the environment the Helm chart gives its pod: they start, become ready (the chart's own
readiness probes say so), serve real requests end to end, and the server records no
permission violation. This is where a service that starts using a subject, stream or bucket
the model does not grant shows up."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared import natsauth
from shared.natsserver import EmbeddedNats, free_port
from tests.deploy.helmchart import containers, env_of, render, service_workloads
from tests.support import ServiceProcess, service_env, services_running, start_nats

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class Pods:
    def __init__(self, nats: EmbeddedNats, gateway_url: str, api_key: str,
                 processes: dict[str, ServiceProcess], probes: dict[str, list[str]]) -> None:
        self.nats = nats
        self.gateway_url = gateway_url
        self.api_key = api_key
        self.processes = processes
        self.probes = probes

    def violations(self) -> list[str]:
        log = (self.nats.data_dir / "nats-server.log").read_text(errors="replace")
        return [line for line in log.splitlines() if "Violation" in line]


def _pod_env(name: str, nats: EmbeddedNats, auth: natsauth.EmbeddedAuth, data: Path,
             metrics_port: int) -> dict[str, str]:
    """The chart's env for ``name`` with what differs on one machine put right: URLs, ports,
    data dirs, and the secrets a Kubernetes Secret would fill in."""
    [c] = containers(service_workloads(render("default"))[name])
    env = {k: e["value"] for k, e in env_of(c).items() if "value" in e}
    env |= {
        "QUANTOPS_NATS_URL": nats.url, "QUANTOPS_DATA_DIR": str(data / name),
        "QUANTOPS_METRICS_PORT": str(metrics_port),
        # One server here: a stream cannot have more replicas than servers.
        "QUANTOPS_STREAM_REPLICAS": "1",
        **auth.env(name),
    }
    return env


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pods]:
    tmp = tmp_path_factory.mktemp("pods")
    auth = natsauth.embedded_auth(tmp / "auth")
    nats = start_nats(tmp / "nats", extra_config=auth.server_config())
    gateway_port = free_port()
    api_key = f"qo_{secrets.token_hex(8)}_{secrets.token_urlsafe(36)}"
    processes: dict[str, ServiceProcess] = {}
    probes: dict[str, list[str]] = {}
    for name, workload in service_workloads(render("default")).items():
        metrics_port = free_port()
        env = _pod_env(name, nats, auth, tmp, metrics_port)
        if name == "gateway":
            env |= {"QUANTOPS_GATEWAY_PORT": str(gateway_port),
                    "QUANTOPS_GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
                    "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": api_key}
        else:
            [c] = containers(workload)
            probes[name] = [part.replace(":9100/", f":{metrics_port}/")
                            for part in c["readinessProbe"]["exec"]["command"]]
        processes[name] = ServiceProcess(name, service_env(nats.url, tmp / name, **env),
                                         tmp / f"{name}.log")
    try:
        with services_running(list(processes.values())):
            for p in processes.values():
                p.start()
            yield Pods(nats, f"http://127.0.0.1:{gateway_port}", api_key, processes, probes)
    finally:
        nats.stop()


def _wait_ready(pods: Pods, timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        if not all(p.alive() for p in pods.processes.values()):
            break  # a pod that exited will not become ready: say why now
        try:
            r = httpx.get(f"{pods.gateway_url}/readyz", timeout=3)
            if r.status_code == 200:
                return r
            last = r.text
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.1)  # under the anonymous rate limit (20/s) of public routes
    logs = {n: p.log()[-2000:] for n, p in pods.processes.items()}
    exited = [n for n, p in pods.processes.items() if not p.alive()]
    raise AssertionError(f"not ready in {timeout_s}s (exited: {exited}): {last}\n{logs}\n"
                         f"{pods.violations()}")


def test_services_become_ready_as_their_own_users(pods: Pods) -> None:
    ready = _wait_ready(pods).json()
    assert all(s["ok"] for s in ready["services"].values()), ready
    # The chart's readiness probes, run as the kubelet would, against each backend (at once).
    assert all(command[0] == "python" for command in pods.probes.values())
    running = {name: subprocess.Popen([sys.executable, *command[1:]])
               for name, command in pods.probes.items()}
    for name, probe in running.items():
        assert probe.wait(timeout=30) == 0, f"{name}: readiness probe failed"
    assert pods.violations() == []


def test_requests_flow_end_to_end_without_violations(pods: Pods) -> None:
    _wait_ready(pods)
    client = httpx.Client(base_url=pods.gateway_url, timeout=10,
                          headers={"Authorization": f"Bearer {pods.api_key}"})
    put = client.put("/v1/state/deploy/k", json={"value": {"n": 1}})
    assert put.status_code == 200, put.text
    assert client.get("/v1/state/deploy/k").json()["value"] == {"n": 1}
    submitted = client.post("/v1/tasks", json={"type": "noop", "input": {}})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]
    deadline = time.monotonic() + 20
    while True:
        status = client.get(f"/v1/tasks/{task_id}").json().get("status", "")
        if status == "succeeded" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == "succeeded"
    assert client.get("/v1/models").status_code == 200
    assert pods.violations() == []
