"""Test support: real nats-servers and real service processes (no mocks of NATS)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec
import nats

from shared.contracts.base import HealthReply
from shared.natsserver import EmbeddedNats, free_port
from shared.subjects import health
from tests.otlp import OtlpReceiver

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, timeout_s: float = 10.0,
    interval_s: float = 0.02, what: str = "condition",
) -> T:
    """Wait until ``check()`` (sync or async) returns something truthy, and return it.

    Tests synchronise on a condition, never on a sleep: a sleep is either too short on a busy
    machine (a flaky test) or too long everywhere else (a slow one). On timeout the error names
    ``what`` and the last value seen, so a failure says what never happened.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        value: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s}s (last: {value!r})")
        await asyncio.sleep(interval_s)


def eventually_sync(
    check: Callable[[], T], *, timeout_s: float = 10.0, interval_s: float = 0.02,
    what: str = "condition",
) -> T:
    """``eventually`` for synchronous tests (subprocesses, HTTP from a thread)."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout_s}s (last: {value!r})")
        time.sleep(interval_s)
    return value


def pid_alive(pid: int) -> bool:
    """Running and not a zombie; safe against the process being reaped while we look."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def start_nats(tmp: Path, *, extra_config: str = "") -> EmbeddedNats:
    # NATS's default fsync: tests check behaviour, not the disk (test_natsserver checks always).
    server = EmbeddedNats(tmp, port=free_port(), monitor_port=free_port(),
                          extra_config=extra_config, sync_interval="")
    server.start(log_file=tmp / "nats-server.log")
    return server


class ServiceProcess:
    """One ``quantops serve <service>`` subprocess with its own environment and log file."""

    def __init__(self, service: str, env: dict[str, str], log_path: Path) -> None:
        self.service = service
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", self.service],
                env=self.env, stdout=out, stderr=out, cwd=ROOT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def service_env(nats_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QUANTOPS_", "OTEL_"))}
    env |= {
        "QUANTOPS_NATS_URL": nats_url,
        "QUANTOPS_DATA_DIR": str(data_dir),
        "QUANTOPS_METRICS_PORT": "0",
        "QUANTOPS_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    env |= overrides
    return env


async def wait_healthy(nats_url: str, service: str, *, timeout_s: float = 30.0,
                       instances: int = 1) -> list[HealthReply]:
    """Wait until ``instances`` processes of ``service`` answer their health subject."""
    nc = await nats.connect(nats_url)

    async def enough() -> list[HealthReply] | None:
        replies = await _gather_health(nc, service, instances)
        return replies if len(replies) >= instances else None

    try:
        return await eventually(enough, timeout_s=timeout_s, interval_s=0.1,
                                what=f"{service}: {instances} healthy")
    finally:
        await nc.close()


async def _gather_health(nc: nats.NATS, service: str, enough: int) -> list[HealthReply]:
    """Health replies to one request: until ``enough`` arrived, or none for 0.25 s."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(health(service), b"{}", reply=inbox)
    out: list[HealthReply] = []
    with contextlib.suppress(nats.errors.TimeoutError):  # no more replies
        while len(out) < enough:
            msg = await sub.next_msg(timeout=0.25)
            if msg.data:  # an empty one is the no-responders status: none is up yet
                out.append(msgspec.json.decode(msg.data, type=HealthReply))
    await sub.unsubscribe()
    return out


@dataclass(frozen=True)
class System:
    """The ``system`` fixture: all four services as processes against the session server.

    Args:
        nats_url: the session nats-server.
        gateway_url: the gateway's base URL (a free port).
        processes: each service's process, by service name.
        data_dir: the services' shared data directory (the admin key is under it).
        otlp: the receiver every service exports its spans to.
        metrics: each service's Prometheus ``/metrics`` URL, by service name.
    """

    nats_url: str
    gateway_url: str
    processes: dict[str, ServiceProcess]
    data_dir: Path
    otlp: OtlpReceiver
    metrics: dict[str, str]


def stop_all(processes: list[ServiceProcess], timeout_s: float = 15.0) -> None:
    """SIGTERM every process first, then wait for each (as ``quantops up`` stops its children):
    they shut down side by side instead of one after another."""
    running = [p.process for p in processes if p.process is not None and p.alive()]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def services_running(processes: list[ServiceProcess]) -> Iterator[list[ServiceProcess]]:
    try:
        yield processes
    finally:
        stop_all(processes)


async def assert_all_healthy(system: System) -> None:
    """Every service answers health ``ok`` over NATS and none of the processes died: what a
    barrage of bad input must leave behind."""
    nc = await nats.connect(system.nats_url)
    try:
        for service in ("state", "registry", "executor", "gateway"):
            reply = await nc.request(health(service), b"{}", timeout=5)
            assert msgspec.json.decode(reply.data, type=HealthReply).status == "ok"
    finally:
        await nc.close()
    assert all(p.alive() for p in system.processes.values())
