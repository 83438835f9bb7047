"""Helpers of the state tests: replicas in this process and client connections (the fixtures in
conftest.py build on them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.state.service import StateApp
from shared.bus import Bus, connect_nats
from shared.natsserver import EmbeddedNats
from shared.settings import Settings

#: Small enough that tests can exceed it cheaply.
ENV = {"QUANTOPS_STATE_COMPRESS_THRESHOLD_BYTES": "1024"}


async def connect(url: str, service: str) -> Bus:
    settings = Settings.from_env({"QUANTOPS_NATS_URL": url})
    nc = await connect_nats(settings, name=f"quantops-{service}", connect_timeout_s=5)
    return Bus(nc, service=service, timeout_s=10)


@dataclass
class Stack:
    nats: EmbeddedNats
    settings: Settings
    replicas: list[StateApp] = field(default_factory=list)
    buses: list[Bus] = field(default_factory=list)

    async def add_replica(self) -> StateApp:
        bus = await connect(self.nats.url, "state")
        app = StateApp(self.settings)
        await app.start(bus)
        self.replicas.append(app)
        self.buses.append(bus)
        return app

    async def close(self) -> None:
        for app in self.replicas:
            await app.stop()
        for bus in self.buses:
            await bus.close()
