"""``quantops up``: the whole system on one machine, each service its own OS process.

Starts the embedded nats-server (unless ``QUANTOPS_NATS_URL`` names one), then one process per
service, restarts a service that dies, and on Ctrl-C or SIGTERM stops every child before
exiting. Children also get SIGTERM from the kernel if this process is killed outright.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared import natsauth
from shared.errors import QuantopsError
from shared.natsserver import EmbeddedNats, die_with_parent, port_is_free
from shared.settings import Settings
from shared.subjects import SERVICES

log = logging.getLogger(__name__)

GRACE_S = 15.0
#: Where the gateway writes the first admin's API key (see services/gateway/auth/bootstrap.py).
ADMIN_KEY_FILE = Path("gateway") / "admin-api-key"


@dataclass
class Child:
    service: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = field(default=0.5)

    def start(self) -> None:
        # Logs can hold the one-time admin key banner: readable by the owner only.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        out = os.fdopen(fd, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", self.service],
            env=self.env, stdout=out, stderr=out, preexec_fn=die_with_parent,
        )
        out.close()
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.nats: EmbeddedNats | None = None
        self.children: list[Child] = []
        self.stopping = False

    def preflight(self) -> None:
        gw = self.settings.gateway
        if not port_is_free(gw.port, gw.host):
            raise QuantopsError(
                f"gateway port {gw.host}:{gw.port} is already in use: stop what uses it or set "
                "QUANTOPS_GATEWAY_PORT", details={"port": gw.port})

    def start(self) -> None:
        self.preflight()
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        key_file = self.data_dir / ADMIN_KEY_FILE
        first_start = not key_file.exists()
        nats_url = self.settings.nats_url
        auth: natsauth.EmbeddedAuth | None = None
        if not nats_url:
            # Each service connects as its own NATS user with only its own subjects, so a local
            # process cannot bypass the gateway by publishing to internal subjects.
            auth = natsauth.embedded_auth(self.data_dir)
            self.nats = EmbeddedNats(self.data_dir / "nats", port=self.settings.nats_port,
                                     monitor_port=self.settings.nats_monitor_port,
                                     extra_config=auth.server_config(),
                                     sync_interval=self.settings.nats_sync_interval)
            self.nats.start(log_file=self.data_dir / "logs" / "nats-server.log")
            nats_url = self.nats.url
            print(f"nats-server  {nats_url}  (JetStream in {self.data_dir / 'nats'})")
        base_env = {**os.environ, "QUANTOPS_NATS_URL": nats_url,
                    "QUANTOPS_DATA_DIR": str(self.data_dir)}
        base = self.settings.metrics_base_port
        for i, service in enumerate(SERVICES):
            port = base + i if base else 0
            env = {**base_env, "QUANTOPS_METRICS_PORT": str(port)}
            if auth:
                env |= auth.env(str(service))
            child = Child(str(service), env, self.data_dir / "logs" / f"{service}.log")
            child.start()
            self.children.append(child)
            pid = child.process.pid if child.process else "?"
            print(f"{service:<12} pid {pid:<8} metrics :{port or 'auto'}  log {child.log_path}")
        gw = self.settings.gateway
        print(f"\ngateway      http://{gw.host}:{gw.port}   (Ctrl-C stops everything)")
        if first_start:
            self._announce_admin_key(key_file)

    def _announce_admin_key(self, key_file: Path) -> None:
        """Show the first admin's API key once, on the terminal of the person who started it."""
        deadline = time.monotonic() + 30
        while not key_file.exists() and time.monotonic() < deadline and not self.stopping:
            time.sleep(0.1)
        if key_file.exists():
            key = key_file.read_text().strip()
            print(f"\nFirst start: created user 'admin'. Its API key (shown once; also in "
                  f"{key_file}, mode 0600):\n\n    {key}\n\n"
                  f"    curl -H 'Authorization: Bearer {key}' "
                  f"http://{self.settings.gateway.host}:{self.settings.gateway.port}/v1/me\n")

    def watch(self) -> None:
        """Restart dead children with backoff until asked to stop."""
        while not self.stopping:
            for child in self.children:
                if self.stopping or child.alive():
                    continue
                code = child.process.returncode if child.process else None
                if time.monotonic() - child.started_at > 30:
                    child.backoff_s = 0.5
                print(f"{child.service} exited with {code}; restarting in {child.backoff_s}s",
                      file=sys.stderr)
                time.sleep(child.backoff_s)
                child.backoff_s = min(child.backoff_s * 2, 30)
                child.restarts += 1
                if not self.stopping:
                    child.start()
            time.sleep(0.2)

    def stop(self) -> None:
        self.stopping = True
        for child in self.children:
            if child.alive() and child.process:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        if self.nats:
            self.nats.stop()


def up(settings: Settings) -> int:
    sup = Supervisor(settings)

    def on_signal(signum: int, _frame: object) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sup.start()
        sup.watch()
    except QuantopsError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping...", file=sys.stderr)
        sup.stop()
    return 0
