"""``quantops up``: the whole system on one machine, each service its own OS process.

Starts the embedded nats-server (unless ``QUANTOPS_NATS_URL`` names one), then one process per
service, restarts a service that dies, and on Ctrl-C or SIGTERM stops every child before
exiting. Children also get SIGTERM from the kernel if this process is killed outright.

``quantops up --cluster 3`` starts a three-member JetStream cluster on loopback instead
(``shared.natscluster``; member ``i`` on ``QUANTOPS_NATS_PORT + i``, routes on
``QUANTOPS_NATS_CLUSTER_PORT + i``, monitoring on ``QUANTOPS_NATS_MONITOR_PORT + i``) and
hands the services ``QUANTOPS_STREAM_REPLICAS`` so every stream, KV bucket and object store
they create is replicated. ``--replicas executor=2,gateway=2`` runs several processes of a
service: one queue group shares the requests; gateway ``k`` listens on
``QUANTOPS_GATEWAY_PORT + k``, and with more than one gateway users and keys live in a KV
bucket all of them follow, signed with one generated secret.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared import natsauth
from shared.errors import QuantopsError
from shared.natscluster import NatsCluster, member_ports
from shared.natsserver import EmbeddedNats, die_with_parent, port_is_free
from shared.settings import Settings
from shared.subjects import SERVICES

log = logging.getLogger(__name__)

GRACE_S = 15.0
#: Where the gateway writes the first admin's API key (see services/gateway/auth/bootstrap.py).
ADMIN_KEY_FILE = Path("gateway") / "admin-api-key"
#: The JWT signing secret several gateway processes share (generated once, mode 0600).
SHARED_JWT_SECRET_FILE = Path("gateway") / "shared-jwt-secret"
#: Raft groups need a majority: more than three copies buy no safety on one machine.
MAX_STREAM_REPLICAS = 3


def parse_instances(spec: str) -> dict[str, int]:
    """``"executor=2,state=2"`` -> processes per service (every service at least one)."""
    counts = {str(s): 1 for s in SERVICES}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        if name not in counts or not count.isdigit() or not 1 <= int(count) <= 16:
            raise QuantopsError(
                f"--replicas {item!r}: expected SERVICE=N with N in 1..16 and SERVICE one of "
                f"{', '.join(counts)}", details={"item": item})
        counts[name] = int(count)
    return counts


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
    """Args:
        settings: the supervisor's own settings (ports, data dir, fsync policy).
        cluster_size: NATS servers to start (1: the single embedded server).
        instances: processes per service (``parse_instances``); one of each by default.
    """

    def __init__(self, settings: Settings, *, cluster_size: int = 1,
                 instances: dict[str, int] | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.cluster_size = cluster_size
        self.instances = instances or parse_instances("")
        self.nats: EmbeddedNats | None = None
        self.cluster: NatsCluster | None = None
        self.children: list[Child] = []
        self.stopping = False

    def preflight(self) -> None:
        gw = self.settings.gateway
        for port in range(gw.port, gw.port + self.instances["gateway"]):
            if not port_is_free(port, gw.host):
                raise QuantopsError(
                    f"gateway port {gw.host}:{port} is already in use: stop what uses it or "
                    "set QUANTOPS_GATEWAY_PORT", details={"port": port})

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
            nats_url = (self._start_cluster(auth) if self.cluster_size > 1
                        else self._start_server(auth))
        base_env = {**os.environ, "QUANTOPS_NATS_URL": nats_url,
                    "QUANTOPS_DATA_DIR": str(self.data_dir), **self._cluster_env()}
        base = self.settings.metrics_base_port
        for service, k in self._processes():
            port = base + len(self.children) if base else 0
            env = {**base_env, "QUANTOPS_METRICS_PORT": str(port), **self._gateway_env(service, k)}
            if auth:
                env |= auth.env(service)
            name = service if k == 0 else f"{service}-{k}"
            child = Child(service, env, self.data_dir / "logs" / f"{name}.log")
            child.start()
            self.children.append(child)
            pid = child.process.pid if child.process else "?"
            print(f"{name:<12} pid {pid:<8} metrics :{port or 'auto'}  log {child.log_path}")
        gw = self.settings.gateway
        gateways = ", ".join(f"http://{gw.host}:{gw.port + k}"
                             for k in range(self.instances["gateway"]))
        print(f"\ngateway      {gateways}   (Ctrl-C stops everything)")
        if first_start:
            self._announce_admin_key(key_file)

    def _start_server(self, auth: natsauth.EmbeddedAuth) -> str:
        self.nats = EmbeddedNats(self.data_dir / "nats", port=self.settings.nats_port,
                                 monitor_port=self.settings.nats_monitor_port,
                                 extra_config=auth.server_config(),
                                 sync_interval=self.settings.nats_sync_interval)
        self.nats.start(log_file=self.data_dir / "logs" / "nats-server.log")
        print(f"nats-server  {self.nats.url}  (JetStream in {self.data_dir / 'nats'})")
        return self.nats.url

    def _start_cluster(self, auth: natsauth.EmbeddedAuth) -> str:
        s = self.settings
        if not s.nats_monitor_port:
            raise QuantopsError("--cluster needs QUANTOPS_NATS_MONITOR_PORT (readiness is "
                                "each member's /healthz)")
        ports = member_ports(self.cluster_size, client=s.nats_port, route=s.nats_cluster_port,
                             monitor=s.nats_monitor_port)
        self.cluster = NatsCluster(self.data_dir / "nats-cluster", ports,
                                   extra_config=auth.server_config(),
                                   sync_interval=s.nats_sync_interval)
        if busy := self.cluster.preflight():
            raise QuantopsError(f"ports {busy} are already in use: set QUANTOPS_NATS_PORT, "
                                "QUANTOPS_NATS_CLUSTER_PORT and QUANTOPS_NATS_MONITOR_PORT",
                                details={"ports": busy})
        self.cluster.start(log_dir=self.data_dir / "logs")
        for i, member in enumerate(self.cluster.members):
            print(f"nats-server  {member.url}  {self.cluster.server_name(i)}  routes "
                  f":{ports[i].route}  (JetStream in {member.data_dir})")
        return self.cluster.urls

    def _cluster_env(self) -> dict[str, str]:
        if self.cluster_size == 1:
            return {}
        return {"QUANTOPS_STREAM_REPLICAS": str(min(self.cluster_size, MAX_STREAM_REPLICAS))}

    def _processes(self) -> list[tuple[str, int]]:
        return [(str(s), k) for s in SERVICES for k in range(self.instances[str(s)])]

    def _gateway_env(self, service: str, k: int) -> dict[str, str]:
        if service != "gateway":
            return {}
        env = {"QUANTOPS_GATEWAY_PORT": str(self.settings.gateway.port + k)}
        if self.instances["gateway"] > 1:
            env |= {"QUANTOPS_GATEWAY_AUTH_STORE": "kv",
                    "QUANTOPS_GATEWAY_JWT_SECRET": self._shared_jwt_secret()}
        return env

    def _shared_jwt_secret(self) -> str:
        configured = self.settings.gateway.jwt_secret.reveal()
        if configured:
            return configured
        path = self.data_dir / SHARED_JWT_SECRET_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

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
        if self.cluster:
            self.cluster.stop()


def up(settings: Settings, *, cluster_size: int = 1, replicas: str = "") -> int:
    try:
        sup = Supervisor(settings, cluster_size=cluster_size, instances=parse_instances(replicas))
    except QuantopsError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2

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
