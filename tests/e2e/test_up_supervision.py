"""``quantops up`` keeps everything running: a SIGKILLed nats-server comes back with the same
store (and is reaped, not left defunct); an executor killed again and again is restarted within
the 2 s backoff cap, and submissions keep working meanwhile because the other executor answers.
Health reports storage (free disk, JetStream use against its reservation) along the way."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from shared.natsserver import free_port
from shared.settings import Settings
from tests.e2e.test_up import _start_up, _wait_ready
from tests.gateway_auth import admin_headers
from tests.support import eventually_sync, pid_alive

pytestmark = pytest.mark.slow


def _wait_line(log: Path, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text())
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {log}:\n{log.read_text()[-3000:]}")


def _gone(pid: int) -> bool:
    """Not running and not a zombie either: reaped."""
    return not Path(f"/proc/{pid}").exists()


def test_up_restarts_nats_server_and_executors(tmp_path: Path) -> None:
    ports = {"nats": free_port(), "monitor": free_port(), "gateway": free_port()}
    url = f"http://127.0.0.1:{ports['gateway']}"
    data_dir, log = tmp_path / "data", tmp_path / "up.log"
    proc = _start_up(data_dir, ports, log)
    try:
        ready = _wait_ready(url, timeout_s=60)
        storage = ready["services"]["state"]["health"]["details"]["storage"]  # type: ignore[index]
        assert storage["jetstream_reserved_bytes"] == Settings().nats_max_file_store
        assert storage["data_dir_free_bytes"] > 0 and storage["jetstream_used_bytes"] >= 0
        auth = admin_headers(data_dir)
        put = httpx.put(f"{url}/v1/state/e2e/kept", json={"value": 1}, headers=auth, timeout=5)
        assert put.status_code in (200, 201), put.text

        nats_pid = int(_wait_line(log, r"nats-server\s+pid (\d+)")[1])
        os.kill(nats_pid, signal.SIGKILL)
        _wait_line(log, r"nats-server restarted: pid \d+")
        deadline = time.monotonic() + 5
        while not _gone(nats_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(nats_pid), "the killed nats-server was left defunct"
        _wait_ready(url, timeout_s=60)
        got = httpx.get(f"{url}/v1/state/e2e/kept", headers=auth, timeout=5)
        assert got.status_code == 200 and got.json()["value"] == 1  # same store

        victim = int(_wait_line(log, r"\nexecutor\s+pid (\d+)")[1])
        for kill in range(3):
            os.kill(victim, signal.SIGKILL)
            # Once it is gone (its socket closed, so the server stops routing to it), the
            # other executor answers submissions while this one is down; a request sent in the
            # moment before would be lost with it, as with any NATS responder that dies.
            eventually_sync(lambda v=victim: _gone(v), timeout_s=10, interval_s=0.01,
                            what="the killed executor reaped")
            r = httpx.post(f"{url}/v1/tasks", json={"type": "noop", "input": {}},
                           headers=auth, timeout=10)
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 30
            while len(restarted := re.findall(r"executor restarted: pid (\d+)",
                                              log.read_text())) <= kill:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            victim = int(restarted[-1])
        delays = [float(d) for d in re.findall(r"executor exited with -9; restarting in ([\d.]+)s",
                                               log.read_text())]
        assert delays == [0.25, 0.5, 1.0], delays
        assert pid_alive(victim)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-2000:]
