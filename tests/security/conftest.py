"""One real deployment for the attacks: a nats-server with the generated ``authorization``
block (``shared.natsauth``), the four services as their own NATS users with the environment
``quantops up`` gives them (bus key included), and the gateway with a known bootstrap admin key
and its users in the KV bucket, as the chart deploys it.

Attackers connect as the ``client`` NATS user (people and programs talking NATS directly) or
with a service's credentials, exactly as the server knows them; nothing is mocked.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS

from shared import natsauth
from shared.natsserver import free_port
from tests.security.support import Deployment, wait_until
from tests.support import ServiceProcess, service_env, services_running, start_nats

PLUGINS = "tests.security.plugin"


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
