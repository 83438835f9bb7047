"""One ``quantops up --cluster 3 --replicas ...`` for the cluster suite (``make test-cluster``).

The supervisor runs in this process, so a test reaches the NATS members it started (to kill,
pause and restart them) and the service processes (to prove none was restarted). These tests
take minutes: plain ``make test`` skips them unless ``-m cluster`` selects them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.supervisor import Supervisor, parse_instances
from shared import natsauth
from shared.bus import Bus, connect_nats
from shared.natscluster import NatsCluster
from shared.natsserver import free_port, port_is_free
from shared.settings import Settings
from tests.support import ROOT, _gather_health

INSTANCES = "executor=2,state=2,registry=2,gateway=2"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = "cluster" in (config.getoption("markexpr") or "")
    skip = pytest.mark.skip(reason="the cluster suite runs with `make test-cluster`")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.cluster)
            if not selected:
                item.add_marker(skip)


def _base_ports(span: int) -> int:
    """A port whose next ``span`` neighbours are free too (members take consecutive ports)."""
    while True:
        base = free_port()
        if all(port_is_free(base + i) for i in range(span)):
            return base


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


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("quantops")
    env = {
        "QUANTOPS_DATA_DIR": str(data_dir),
        "QUANTOPS_NATS_PORT": str(_base_ports(3)),
        "QUANTOPS_NATS_CLUSTER_PORT": str(_base_ports(3)),
        "QUANTOPS_NATS_MONITOR_PORT": str(_base_ports(3)),
        "QUANTOPS_GATEWAY_PORT": str(_base_ports(2)),
        "QUANTOPS_METRICS_BASE_PORT": "0",
        "QUANTOPS_QUANT_SEED_DEMO": "false",
        # The built-in tasks are enough; the quant plugins would only slow every start.
        "QUANTOPS_EXECUTOR_ENTRY_POINTS": "false",
        "QUANTOPS_EXECUTOR_WORKER_PROCESSES": "1",
        "QUANTOPS_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith(("QUANTOPS_", "OTEL_"))]:
            mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        settings = Settings.from_env()
        sup = Supervisor(settings, cluster_size=3, instances=parse_instances(INSTANCES))
        # As under `quantops up`: a service that dies is restarted (the tests then prove
        # that none had to be, once the system was up).
        watcher = threading.Thread(target=sup.watch, daemon=True)
        try:
            sup.start()
            watcher.start()
            system = System(sup, settings, {})
            asyncio.run(wait_services(system, timeout_s=120))
            system.pids = {c.process.pid: c.service for c in sup.children if c.process}
            yield system
        finally:
            sup.stopping = True
            watcher.join(timeout=5) if watcher.is_alive() else None
            sup.stop()


@pytest.fixture
async def client(system: System) -> AsyncIterator[Bus]:
    settings = system.client_settings()
    nc = await connect_nats(settings, name="quantops-chaos", connect_timeout_s=30)
    bus = Bus(nc, service="chaos", timeout_s=10)
    yield bus
    await bus.close()


async def wait_services(system: System, *, timeout_s: float = 90.0) -> None:
    """Until every service process answers health over NATS and every gateway is ready."""
    settings = natsauth.with_local_credentials(system.settings)
    nc = await connect_nats(settings, name="quantops-chaos-health", connect_timeout_s=30)
    instances = system.supervisor.instances
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            missing = {s: n - len(await _gather_health(nc, s, n)) for s, n in instances.items()}
            missing = {s: n for s, n in missing.items() if n > 0}
            unready = [p for p in gateway_ports(system) if not gateway_ready(p)]
            if not missing and not unready:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not answering: {missing}; gateways not ready: {unready}")
            await asyncio.sleep(0.5)
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
