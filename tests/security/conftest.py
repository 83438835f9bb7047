"""One real deployment for the attacks (``tests.deployment``): a nats-server with the generated
``authorization`` block (``shared.natsauth``), the four services as their own NATS users with
the environment the Helm chart gives their pods (bus key included), and the gateway with a
known bootstrap admin key and its users in the KV bucket, as the chart deploys it.

Attackers connect as the ``client`` NATS user (people and programs talking NATS directly) or
with a service's credentials, exactly as the server knows them; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from nats.aio.client import Client as NATS

from shared import natsauth
from tests.deployment import Deployment, deployed
from tests.support import eventually_sync

PLUGINS = "tests.security.plugin"


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployed(tmp_path_factory.mktemp("secured"), QUANTOPS_EXECUTOR_PLUGINS=PLUGINS,
                  QUANTOPS_QUANT_SEED_DEMO="false") as d:
        yield d


@pytest.fixture(scope="session")
def ready(deployment: Deployment) -> Deployment:
    """The deployment once the gateway says every service is ready (its ``/readyz`` asks each
    one's health over NATS)."""
    def is_ready() -> bool:
        try:
            return httpx.get(f"{deployment.gateway_url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually_sync(is_ready, timeout_s=90, interval_s=0.2, what="/readyz 200")
    except TimeoutError as e:
        logs = {n: p.log()[-1500:] for n, p in deployment.processes.items()}
        raise AssertionError(f"deployment not ready: {logs}") from e
    return deployment


@pytest.fixture
async def client_nc(ready: Deployment) -> AsyncIterator[NATS]:
    nc = await ready.connect(natsauth.CLIENT_USER)
    yield nc
    await nc.close()
