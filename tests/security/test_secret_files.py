"""No secret on disk is readable by other local users: every file of the secured deployment
(the nats-server config with its authorization block, the credentials file, the gateway's
keys and databases) that contains a password, the bus key or the admin key is 0600 or
tighter, and so is every directory above it that ``quantops up``-like start-up created."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.deployment import Deployment

pytestmark = [pytest.mark.slow]


def _secrets(d: Deployment) -> list[bytes]:
    out = [d.admin_key.encode()]
    for cred in d.auth.credentials.values():
        out.append(cred.password.reveal().encode())
        if cred.bus_key.reveal():
            out.append(cred.bus_key.reveal().encode())
    return out


def _roots(d: Deployment) -> list[Path]:
    return [d.root]  # the nats dir, the credentials dir and every service's data dir


def test_files_holding_secrets_are_private(ready: Deployment) -> None:
    secrets = _secrets(ready)
    holding: list[Path] = []
    exposed: list[str] = []
    for root in _roots(ready):
        for path in root.rglob("*"):
            if not path.is_file() or path.stat().st_size > 4 * 1024 * 1024:
                continue
            data = path.read_bytes()
            if any(s in data for s in secrets):
                holding.append(path)
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    exposed.append(f"{path} {oct(mode)}")
    assert any(p.name == "nats-server.conf" for p in holding), holding  # the check can see
    assert exposed == []
