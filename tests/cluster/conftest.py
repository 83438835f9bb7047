"""One ``quantops up --cluster 3 --replicas ...`` for the cluster suite (``make test-cluster``).

The supervisor runs in this process, so a test reaches the NATS members it started (to kill,
pause and restart them) and the service processes (to prove none was restarted). These tests
take minutes: plain ``make test`` skips them unless ``-m cluster`` selects them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cli.supervisor import Supervisor, parse_instances
from shared.bus import Bus, connect_nats
from shared.natsserver import free_port, port_is_free
from shared.settings import Settings
from tests.cluster.support import System, wait_services
from tests.support import ROOT

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
    # The `client` NATS user holds no bus key: it calls with the token a gateway grants for the
    # admin's API key, as any NATS user does (docs/security.md). A test lasts less than its life.
    bus.caller_token = await system.bus_token()
    yield bus
    await bus.close()
