"""A quantops stack for benchmarks: NATS (one server at R1, or a three-member cluster at R3)
and service processes on it, started and stopped together."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_state import wait_replicas
from shared.bus import Bus
from shared.natscluster import NatsCluster, member_ports
from shared.natsserver import EmbeddedNats, free_port
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    """Args:
        members: 1 (a single server, every stream R1) or 3 (a cluster, every stream R3).
        sync_interval: JetStream fsync policy of every server ("" keeps the default).
        services: processes to start per service, e.g. ``{"state": 1}``.
    """

    members: int
    sync_interval: str = ""
    services: dict[str, int] = field(default_factory=dict)
    server: EmbeddedNats | None = None
    cluster: NatsCluster | None = None
    procs: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.members} node{'s' if self.members > 1 else ''} R{self.members}"

    @property
    def urls(self) -> str:
        if self.cluster is not None:
            return self.cluster.urls
        assert self.server is not None
        return self.server.url

    @property
    def url(self) -> str:
        """One member's URL (nats-py discovers the others)."""
        return self.urls.split(",")[0]

    def server_pids(self) -> list[int]:
        members = self.cluster.members if self.cluster else [self.server]
        return [m.process.pid for m in members if m is not None and m.process is not None]

    def service_pids(self, service: str) -> list[int]:
        return [p.pid for p in self.procs.get(service, [])]

    def start(self) -> Stack:
        tmp = Path(tempfile.mkdtemp(prefix="quantops-bench-"))
        if self.members == 1:
            self.server = EmbeddedNats(tmp / "nats", port=free_port(),
                                       sync_interval=self.sync_interval)
            self.server.start()
        else:
            ports = member_ports(self.members, client=_consecutive(self.members),
                                 route=_consecutive(self.members),
                                 monitor=_consecutive(self.members))
            self.cluster = NatsCluster(tmp / "nats", ports, sync_interval=self.sync_interval)
            self.cluster.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTOPS_", "OTEL_"))}
        env |= {"QUANTOPS_NATS_URL": self.urls, "QUANTOPS_DATA_DIR": str(tmp / "data"),
                "QUANTOPS_METRICS_PORT": "0", "QUANTOPS_LOG_LEVEL": "WARNING",
                "QUANTOPS_STREAM_REPLICAS": str(self.members),
                "QUANTOPS_EXECUTOR_WORKER_PROCESSES": "1",
                "QUANTOPS_EXECUTOR_ENTRY_POINTS": "false", "QUANTOPS_QUANT_SEED_DEMO": "false",
                "PYTHONPATH": str(ROOT)}
        for service, count in self.services.items():
            self.procs[service] = [
                subprocess.Popen([sys.executable, "-m", "cli.main", "serve", service],
                                 env=env, cwd=ROOT) for _ in range(count)]
        return self

    async def wait(self, bus: Bus) -> None:
        if "state" in self.services:
            await wait_replicas(bus, self.services["state"])
        for service in self.services:
            await _wait_health(bus, service)

    def settings(self) -> Settings:
        return Settings.from_env({"QUANTOPS_NATS_URL": self.urls})

    def stop(self) -> None:
        everything = [p for procs in self.procs.values() for p in procs]
        for p in everything:
            p.terminate()
        for p in everything:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.server:
            self.server.stop()
        if self.cluster:
            self.cluster.stop()


def _consecutive(n: int) -> int:
    from shared.natsserver import port_is_free

    while True:
        base = free_port()
        if all(port_is_free(base + i) for i in range(n)):
            return base


async def _wait_health(bus: Bus, service: str, timeout_s: float = 90.0) -> None:
    from shared.contracts.base import Empty, HealthReply

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await bus.request(f"{service}.health", Empty(), HealthReply, timeout_s=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
