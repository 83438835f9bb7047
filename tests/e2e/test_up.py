"""``quantops up`` as a user runs it: ready within 20 s, Ctrl-C leaves no process behind, and a
second run finds what the first one stored."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.natsserver import free_port
from tests.gateway_auth import admin_headers
from tests.support import ROOT, eventually_sync, pid_alive, service_env

pytestmark = pytest.mark.slow


def _start_up(data_dir: Path, ports: dict[str, int], log: Path) -> subprocess.Popen[bytes]:
    env = service_env("", data_dir, QUANTOPS_NATS_PORT=str(ports["nats"]),
                      QUANTOPS_NATS_MONITOR_PORT=str(ports["monitor"]),
                      QUANTOPS_GATEWAY_PORT=str(ports["gateway"]),
                      QUANTOPS_METRICS_BASE_PORT="0")
    env.pop("QUANTOPS_NATS_URL")
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli.main", "up"], env=env,
                                stdout=out, stderr=out, cwd=ROOT)


def _wait_ready(url: str, timeout_s: float) -> dict[str, object]:
    last: list[object] = [None]  # what /readyz said last, for the failure message

    def ready() -> dict[str, object] | None:
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
        except httpx.HTTPError as e:
            last[0] = e
            return None
        last[0] = r.text
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    try:
        # 0.1 s apart: under the anonymous rate limit (20/s) of public routes.
        return eventually_sync(ready, timeout_s=timeout_s, interval_s=0.1, what="/readyz 200")
    except TimeoutError:
        raise AssertionError(f"not ready in {timeout_s}s: {last[0]}") from None


def _pids(ready: dict[str, object]) -> set[int]:
    services = ready["services"]
    assert isinstance(services, dict)
    out = set()
    for s in services.values():
        if s.get("health"):
            out.add(int(s["health"]["instance"].rsplit(":", 1)[1]))
    return out


async def _nats_as_the_readme_shows(port: int, data_dir: Path, url: str,
                                    auth: dict[str, str]) -> dict[str, object]:
    """README's "Talking NATS directly", verbatim but for the ports, data dir and API key."""
    import nats

    async with httpx.AsyncClient(timeout=5) as http:
        grant = (await http.post(f"{url}/v1/auth/bus-token", headers=auth)).json()
    passwords = json.loads((data_dir / "nats-credentials.json").read_text())["passwords"]
    nc = await nats.connect(f"nats://127.0.0.1:{port}", user="client",
                            password=passwords["client"], inbox_prefix="_INBOX_client")
    try:
        reply = await nc.request("state.kv.get", json.dumps(
            {"namespace": "e2e", "key": "survivor"}).encode(), timeout=5,
            headers={grant["header"]: grant["token"]})
        return json.loads(reply.data)  # type: ignore[no-any-return]
    finally:
        await nc.close()


def test_up_ready_then_ctrl_c_leaves_nothing_and_data_survives(tmp_path: Path) -> None:
    ports = {"nats": free_port(), "monitor": free_port(), "gateway": free_port()}
    url = f"http://127.0.0.1:{ports['gateway']}"
    data_dir = tmp_path / "data"
    proc = _start_up(data_dir, ports, tmp_path / "up.log")
    try:
        started = time.monotonic()
        ready = _wait_ready(url, timeout_s=20)
        assert time.monotonic() - started < 20
        assert all(s["ok"] for s in ready["services"].values())  # type: ignore[union-attr]
        children = _pids(ready)
        assert len(children) == 4  # state, registry, an executor and the gateway report pids
        auth = admin_headers(data_dir)
        put = httpx.put(f"{url}/v1/state/e2e/survivor", json={"value": {"n": 1}}, timeout=5,
                        headers=auth)
        assert put.status_code in (200, 201), put.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    up_log = (tmp_path / "up.log").read_text()
    assert proc.returncode == 0, up_log[-2000:]
    assert auth["Authorization"].removeprefix("Bearer ") in up_log  # the key, shown once
    assert oct((data_dir / "logs" / "gateway.log").stat().st_mode & 0o777) == "0o600"
    # 0.5 s: as long as this test has always allowed them.
    eventually_sync(lambda: not [p for p in children if pid_alive(p)], timeout_s=0.5,
                    what="no process left behind after Ctrl-C")

    proc = _start_up(data_dir, ports, tmp_path / "up2.log")
    try:
        _wait_ready(url, timeout_s=20)
        got = httpx.get(f"{url}/v1/state/e2e/survivor", timeout=5, headers=auth)
        assert got.status_code == 200, got.text
        assert got.json()["value"] == {"n": 1}
        # NATS directly, as the `client` user README tells people to connect with.
        direct = asyncio.run(_nats_as_the_readme_shows(ports["nats"], data_dir, url, auth))
        assert direct.get("value") == {"n": 1}, direct
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0


def test_up_refuses_a_taken_gateway_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        ports = {"nats": free_port(), "monitor": free_port(), "gateway": taken}
        proc = _start_up(tmp_path / "data", ports, tmp_path / "up.log")
        proc.wait(20)
    assert proc.returncode == 1
    assert f"gateway port 127.0.0.1:{taken} is already in use" in (tmp_path / "up.log").read_text()
