"""Helpers of the registry tests: a registry stack and client connections (the fixtures in
conftest.py build on them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.bus import Bus, connect_nats
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from tests.support import ServiceProcess, service_env, start_nats, wait_healthy


@dataclass
class Stack:
    """One nats-server and the registry processes started against it."""

    nats: EmbeddedNats
    tmp: Path
    data_dir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nats.url

    async def start(self, service: str = "registry", **env: str) -> ServiceProcess:
        log = self.tmp / f"{service}-{len(self.processes)}.log"
        env = {"QUANTOPS_LOG_FORMAT": "text", **env}
        proc = ServiceProcess(service, service_env(self.url, self.data_dir, **env), log).start()
        self.processes.append(proc)
        if service == "registry":
            await wait_healthy(self.url, service, timeout_s=30)
        return proc

    def stop(self) -> None:
        for p in self.processes:
            p.stop()
        self.nats.stop()


@contextlib.contextmanager
def new_stack(tmp: Path) -> Iterator[Stack]:
    stack = Stack(nats=start_nats(tmp / "nats"), tmp=tmp, data_dir=tmp / "data")
    try:
        yield stack
    finally:
        stack.stop()


async def connect(url: str, name: str = "registry-test") -> Bus:
    settings = Settings.from_env({"QUANTOPS_NATS_URL": url})
    nc = await connect_nats(settings, name=name, connect_timeout_s=5)
    return Bus(nc, service="test", timeout_s=10)
