"""The generated deployment on one machine: a nats-server with the ``authorization`` block of
``shared.natsauth``, and the four services, each as its own NATS user with the environment the
Helm chart gives its pod (``pod_env``). What differs on one machine is put right: URLs, ports,
data directories, one stream replica, and the secrets a Kubernetes Secret would fill in (the
gateway's JWT secret and a known bootstrap admin key).

The security suite attacks it (``tests/security``); the deploy tests run the chart's own
readiness probes against it (``tests/deploy/test_services_under_auth.py``). Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from nats.aio.client import Client as NATS

from shared import bustokens, natsauth
from shared.natsserver import EmbeddedNats, free_port
from shared.subjects import Header
from tests.deploy.helmchart import containers, env_of, render, service_workloads
from tests.deploy.natsutil import connect_as
from tests.support import ServiceProcess, service_env, services_running, start_nats

SERVICES = ("state", "registry", "executor", "gateway")


@dataclass
class Deployment:
    """Args:
        nats: the server, with the generated authorization block.
        auth: every NATS user's credentials, as the server knows them.
        gateway_url: the gateway's base URL.
        admin_key: the gateway's bootstrap admin API key.
        processes: each service's process, by name.
        metrics_ports: each service's Prometheus port, by name.
        root: the directory all of it lives under (configs, credentials, data, logs).
    """

    nats: EmbeddedNats
    auth: natsauth.EmbeddedAuth
    gateway_url: str
    admin_key: str
    processes: dict[str, ServiceProcess]
    metrics_ports: dict[str, int]
    root: Path

    async def connect(self, user: str) -> NATS:
        """A connection as ``user`` with its real password (and its own inbox prefix)."""
        return await connect_as(self.nats.url, user,
                                self.auth.credentials[user].password.reveal())

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.gateway_url, timeout=30,
                            headers={"Authorization": f"Bearer {key or self.admin_key}"})

    def signed(self, principal: str, role: str) -> dict[str, str]:
        """Headers a legitimate caller with ``role`` sends: its principal, and a bus token
        signed with the services' key (as the gateway and executor do)."""
        out = {Header.PRINCIPAL.value: principal, Header.ROLE.value: role}
        key = self.auth.credentials["state"].bus_key.reveal()
        out["Quantops-Auth"] = bustokens.sign(key.encode(), principal, role)
        return out

    def violations(self) -> list[str]:
        """The server's permission violations so far (its log lines)."""
        log = (self.nats.data_dir / "nats-server.log").read_text(errors="replace")
        return [line for line in log.splitlines() if "Violation" in line]


def pod_env(name: str, nats: EmbeddedNats, auth: natsauth.EmbeddedAuth, data: Path,
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


@contextlib.contextmanager
def deployed(tmp: Path, **extra: str) -> Iterator[Deployment]:
    """The deployment under ``tmp``, its services started (not yet ready: the caller waits for
    what it needs); ``extra`` is more environment for every service. Stopped afterwards."""
    auth = natsauth.embedded_auth(tmp / "auth")
    nats = start_nats(tmp / "nats", extra_config=auth.server_config())
    gateway_port = free_port()
    admin_key = f"qo_{secrets.token_hex(8)}_{secrets.token_urlsafe(36)}"
    ports = {name: free_port() for name in SERVICES}
    processes: dict[str, ServiceProcess] = {}
    for name, metrics_port in ports.items():
        env = pod_env(name, nats, auth, tmp / "data", metrics_port) | extra
        if name == "gateway":
            env |= {"QUANTOPS_GATEWAY_PORT": str(gateway_port),
                    "QUANTOPS_GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
                    "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": admin_key}
        processes[name] = ServiceProcess(name, service_env(nats.url, tmp / "data" / name, **env),
                                         tmp / f"{name}.log")
    try:
        with services_running(list(processes.values())):
            for p in processes.values():
                p.start()
            yield Deployment(nats, auth, f"http://127.0.0.1:{gateway_port}", admin_key,
                             processes, ports, tmp)
    finally:
        nats.stop()
