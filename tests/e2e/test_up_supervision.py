"""``quantops up`` keeps everything running: a SIGKILLed nats-server comes back with the same
store (and is reaped, not left defunct); an executor killed again and again is restarted within
the 2 s backoff cap, and submissions keep working meanwhile because the other executor answers.
Health reports storage (free disk, JetStream use against its reservation) along the way."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from shared.natsserver import free_port
from shared.settings import Settings
from tests.e2e.test_up import _start_up, _wait_ready
from tests.gateway_auth import admin_headers
from tests.support import eventually_sync, pid_alive

pytestmark = pytest.mark.slow
T = TypeVar("T")


def _in_log(log: Path, check: Callable[[str], T], *, what: str, timeout_s: float = 30.0) -> T:
    """``check(log text)`` once it is truthy; a failure shows the log's tail."""
    try:
        return eventually_sync(lambda: check(log.read_text()), timeout_s=timeout_s,
                               interval_s=0.05, what=what)
    except TimeoutError as e:
        raise AssertionError(f"{e} in {log}:\n{log.read_text()[-3000:]}") from None


def _wait_line(log: Path, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
    return _in_log(log, lambda text: re.search(pattern, text), what=repr(pattern),
                   timeout_s=timeout_s)


def _restarts(text: str, *, more_than: int) -> list[str]:
    """The pids of the executor's restarts logged so far, once there are more than that."""
    found: list[str] = re.findall(r"executor restarted: pid (\d+)", text)
    return found if len(found) > more_than else []


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
        eventually_sync(lambda: _gone(nats_pid), timeout_s=5, interval_s=0.05,
                        what="the killed nats-server reaped, not left defunct")
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
            restarted = _in_log(log, lambda text, n=kill: _restarts(text, more_than=n),
                                what=f"the executor's restart {kill + 1}")
            victim = int(restarted[-1])
        delays = [float(d) for d in re.findall(r"executor exited with -9; restarting in ([\d.]+)s",
                                               log.read_text())]
        assert delays == [0.25, 0.5, 1.0], delays
        assert pid_alive(victim)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-2000:]
