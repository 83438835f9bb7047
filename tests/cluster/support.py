"""The cluster the chaos suite runs against, as the tests see it, and how to wait for it (the
fixtures that start it are in ``conftest.py``)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from cli.supervisor import Supervisor
from shared import natsauth
from shared.bus import connect_nats
from shared.clients.http import AsyncClient
from shared.natscluster import NatsCluster
from shared.settings import Settings
from tests.gateway_auth import admin_key
from tests.support import _gather_health, eventually


@dataclass
class System:
    supervisor: Supervisor
    settings: Settings
    pids: dict[int, str]

    @property
    def cluster(self) -> NatsCluster:
        assert self.supervisor.cluster is not None
        return self.supervisor.cluster

    def client_settings(self) -> Settings:
        return natsauth.with_local_credentials(self.settings, user="client")

    async def bus_token(self) -> str:
        """A bus token for the bootstrap admin, granted by the first gateway."""
        key = admin_key(self.settings.data_dir)
        async with AsyncClient(f"http://127.0.0.1:{gateway_ports(self)[0]}", api_key=key,
                               timeout_s=30) as http:
            return (await http.auth.bus_token()).token


async def wait_services(system: System, *, timeout_s: float = 90.0) -> None:
    """Until every service process answers health over NATS and every gateway is ready."""
    settings = natsauth.with_local_credentials(system.settings)
    nc = await connect_nats(settings, name="quantops-chaos-health", connect_timeout_s=30)
    instances = system.supervisor.instances
    behind = ""  # what was not up yet at the last look, for the failure message

    async def all_up() -> bool:
        nonlocal behind
        missing = {s: n - len(await _gather_health(nc, s, n)) for s, n in instances.items()}
        missing = {s: n for s, n in missing.items() if n > 0}
        unready = [p for p in gateway_ports(system) if not gateway_ready(p)]
        behind = f"not answering: {missing}; gateways not ready: {unready}"
        return not missing and not unready

    try:
        await eventually(all_up, timeout_s=timeout_s, interval_s=0.5, what="every service up")
    except TimeoutError as e:
        raise TimeoutError(behind) from e
    finally:
        await nc.close()


def gateway_ports(system: System) -> list[int]:
    gw = system.settings.gateway
    return [gw.port + k for k in range(system.supervisor.instances["gateway"])]


def gateway_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False
