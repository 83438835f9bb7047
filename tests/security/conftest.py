"""One real deployment for the attacks: a nats-server with the generated ``authorization``
block (``shared.natsauth``), the four services as their own NATS users with the environment
``quantops up`` gives them (bus key included), and the gateway with a known bootstrap admin key
and its users in the KV bucket, as the chart deploys it.

Attackers connect as the ``client`` NATS user (people and programs talking NATS directly) or
with a service's credentials, exactly as the server knows them; nothing is mocked.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS

from shared import bustokens, natsauth
from shared.natsserver import EmbeddedNats, free_port
from shared.subjects import Header
from tests.deploy.natsutil import connect_as
from tests.support import ServiceProcess, service_env, services_running, start_nats

PLUGINS = "tests.security.plugin"


@dataclass
class Deployment:
    nats: EmbeddedNats
    auth: natsauth.EmbeddedAuth
    gateway_url: str
    admin_key: str
    processes: dict[str, ServiceProcess]
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
        log = (self.nats.data_dir / "nats-server.log").read_text(errors="replace")
        return [line for line in log.splitlines() if "Violation" in line]


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("secured")
    auth = natsauth.embedded_auth(tmp / "auth")
    nats = start_nats(tmp / "nats", extra_config=auth.server_config())
    port = free_port()
    admin_key = f"qo_{secrets.token_hex(8)}_{secrets.token_urlsafe(36)}"
    processes: dict[str, ServiceProcess] = {}
    for name in ("state", "registry", "executor", "gateway"):
        env: dict[str, Any] = {**auth.env(name), "QUANTOPS_EXECUTOR_PLUGINS": PLUGINS,
                               "QUANTOPS_QUANT_SEED_DEMO": "false"}
        if name == "gateway":
            env |= {"QUANTOPS_GATEWAY_PORT": str(port),
                    "QUANTOPS_GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
                    # As the chart deploys it: users, keys and sessions in the KV bucket.
                    "QUANTOPS_GATEWAY_AUTH_STORE": "kv",
                    "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": admin_key}
        processes[name] = ServiceProcess(name, service_env(nats.url, tmp / "data", **env),
                                         tmp / f"{name}.log")
    try:
        with services_running(list(processes.values())):
            for p in processes.values():
                p.start()
            yield Deployment(nats, auth, f"http://127.0.0.1:{port}", admin_key, processes,
                             tmp)
    finally:
        nats.stop()


@pytest.fixture(scope="session")
def ready(deployment: Deployment) -> Deployment:
    """The deployment once the gateway says every service is ready (its ``/readyz`` asks each
    one's health over NATS)."""
    def is_ready() -> bool:
        try:
            return httpx.get(f"{deployment.gateway_url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(is_ready, timeout_s=90, every_s=0.2):
        logs = {n: p.log()[-1500:] for n, p in deployment.processes.items()}
        raise AssertionError(f"deployment not ready: {logs}")
    return deployment


@pytest.fixture
async def client_nc(ready: Deployment) -> AsyncIterator[NATS]:
    nc = await ready.connect(natsauth.CLIENT_USER)
    yield nc
    await nc.close()


def wait_until(check: Any, *, timeout_s: float = 30.0, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def data_dir(deployment: Deployment) -> Path:
    return Path(deployment.processes["gateway"].env["QUANTOPS_DATA_DIR"])
