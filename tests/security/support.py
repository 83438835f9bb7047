"""The deployment the security tests attack, and their helpers (the fixtures that build it are
in ``conftest.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client as NATS

from shared import bustokens, natsauth
from shared.natsserver import EmbeddedNats
from shared.subjects import Header
from tests.deploy.natsutil import connect_as
from tests.support import ServiceProcess


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


def wait_until(check: Any, *, timeout_s: float = 30.0, every_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)

