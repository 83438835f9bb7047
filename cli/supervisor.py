"""``quantops up``: the whole system on one machine, each service its own OS process.

Starts the embedded nats-server (unless ``QUANTOPS_NATS_URL`` names one), then one process per
service (``QUANTOPS_UP_EXECUTORS`` executors, two by default, so a dying executor never leaves
submissions without a responder), and keeps every one of them running:

- a process that exits, nats-server included (same configuration, same store), is restarted
  after a backoff that starts at 0.25 s, doubles per quick death, is capped at ``MAX_BACKOFF_S``
  and resets once the process has run for ``HEALTHY_S``; restarts are scheduled, not slept, so
  one crashing process never delays another's restart;
- every child is reaped, and the supervisor is the subreaper of its descendants, so a killed
  executor's orphaned workers are reaped here too (no zombie is left behind);
- each process's output goes through a pipe into a log file rotated by size, errors also into
  ``errors.log`` (``cli.logfiles``).

On Ctrl-C or SIGTERM it stops every child before exiting. Children also get SIGTERM from the
kernel if this process is killed outright.

``quantops up --cluster 3`` starts a three-member JetStream cluster on loopback instead
(``shared.natscluster``; member ``i`` on ``QUANTOPS_NATS_PORT + i``, routes on
``QUANTOPS_NATS_CLUSTER_PORT + i``, monitoring on ``QUANTOPS_NATS_MONITOR_PORT + i``) and
hands the services ``QUANTOPS_STREAM_REPLICAS`` so every stream, KV bucket and object store
they create is replicated. The members are not restarted by the supervisor: a cluster
outlives one member, and the chaos suite (tests/cluster) kills and restarts them itself.
``--replicas executor=2,gateway=2`` runs several processes of a service: one queue group
shares the requests; gateway ``k`` listens on ``QUANTOPS_GATEWAY_PORT + k``, and with more
than one gateway users and keys live in a KV bucket all of them follow, signed with one
generated secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.logfiles import LogPump, RotatingFile, pipe_to
from shared import natsauth
from shared.errors import QuantopsError
from shared.natscluster import NatsCluster, member_ports
from shared.natsserver import EmbeddedNats, die_with_parent, port_is_free
from shared.settings import Settings
from shared.subjects import SERVICES, Service

log = logging.getLogger(__name__)

GRACE_S = 15.0
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 2.0
#: A process that has run this long is healthy: its next death restarts it at the first backoff.
HEALTHY_S = 60.0
#: Where the gateway writes the first admin's API key (see services/gateway/auth/bootstrap.py).
ADMIN_KEY_FILE = Path("gateway") / "admin-api-key"
#: The JWT signing secret several gateway processes share (generated once, mode 0600).
SHARED_JWT_SECRET_FILE = Path("gateway") / "shared-jwt-secret"
#: Raft groups need a majority: more than three copies buy no safety on one machine.
MAX_STREAM_REPLICAS = 3


def parse_instances(spec: str) -> dict[str, int]:
    """``"executor=2,state=2"`` -> processes of the services named (the others keep their
    defaults: one each, ``QUANTOPS_UP_EXECUTORS`` executors)."""
    counts: dict[str, int] = {}
    names = [str(s) for s in SERVICES]
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        if name not in names or not count.isdigit() or not 1 <= int(count) <= 16:
            raise QuantopsError(
                f"--replicas {item!r}: expected SERVICE=N with N in 1..16 and SERVICE one of "
                f"{', '.join(names)}", details={"item": item})
        counts[name] = int(count)
    return counts


@dataclass
class Restarts:
    """When a process that died may start again: doubling backoff, capped, reset when healthy."""

    backoff_s: float = FIRST_BACKOFF_S
    count: int = 0
    started_at: float = 0.0
    due_at: float | None = None

    def started(self, now: float) -> None:
        self.started_at, self.due_at = now, None

    def died(self, now: float) -> float:
        """Schedule the restart; returns the delay."""
        if now - self.started_at >= HEALTHY_S:
            self.backoff_s = FIRST_BACKOFF_S
        delay = self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
        self.due_at = now + delay
        self.count += 1
        return delay


class Logs:
    """The log directory: one rotating file per process and the shared ``errors.log``."""

    def __init__(self, directory: Path, *, max_bytes: int, backups: int) -> None:
        self.directory = directory
        self.max_bytes, self.backups = max_bytes, backups
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.errors = self.file("errors")
        self._files: dict[str, RotatingFile] = {}
        self._pumps: list[LogPump] = []

    def file(self, name: str) -> RotatingFile:
        return RotatingFile(self.directory / f"{name}.log", max_bytes=self.max_bytes,
                            backups=self.backups)

    def pipe(self, name: str) -> tuple[int, LogPump]:
        """A pipe into ``<name>.log`` (the write end is for the child)."""
        if name not in self._files:
            self._files[name] = self.file(name)
        write_end, pump = pipe_to(name, self._files[name], self.errors)
        self._pumps = [p for p in self._pumps if p.alive()] + [pump]
        return write_end, pump

    def drain(self, timeout_s: float = 2.0) -> None:
        """Let the pumps copy what exited processes wrote last."""
        deadline = time.monotonic() + timeout_s
        for pump in self._pumps:
            pump.join(max(0.0, deadline - time.monotonic()))

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.log"


@dataclass
class ServiceProcess:
    """One ``quantops serve <service>`` process, restarted as itself."""

    name: str
    service: str
    env: dict[str, str]
    logs: Logs
    process: subprocess.Popen[bytes] | None = None
    restarts: Restarts = field(default_factory=Restarts)

    def spawn(self) -> None:
        write_end, _pump = self.logs.pipe(self.name)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", self.service],
                env=self.env, stdout=write_end, stderr=write_end, preexec_fn=die_with_parent)
        finally:
            os.close(write_end)
        self.restarts.started(time.monotonic())

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        """None while running; polling also reaps it."""
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.exit_code() is None


@dataclass
class NatsProcess:
    """The embedded nats-server, restarted with the same configuration and store."""

    name: str
    server: EmbeddedNats
    logs: Logs
    restarts: Restarts = field(default_factory=Restarts)

    def spawn(self) -> None:
        write_end, _pump = self.logs.pipe(self.name)
        try:
            self.server.start(output=write_end)
        finally:
            os.close(write_end)
        self.restarts.started(time.monotonic())

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.server.process

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()


Supervised = ServiceProcess | NatsProcess


def embedded_nats(settings: Settings, data_dir: Path, *, extra_config: str = ""
                  ) -> EmbeddedNats:
    """The nats-server ``quantops up`` runs, configured from ``settings`` alone."""
    return EmbeddedNats(data_dir, port=settings.nats_port, monitor_port=settings.nats_monitor_port,
                        extra_config=extra_config, sync_interval=settings.nats_sync_interval,
                        max_file_store=settings.nats_max_file_store,
                        memory_limit=settings.nats_memory_limit)


def instance_counts(settings: Settings, overrides: dict[str, int] | None = None
                    ) -> dict[str, int]:
    """Processes per service: ``overrides`` (``--replicas``), else one each and
    ``QUANTOPS_UP_EXECUTORS`` executors."""
    defaults = {str(s): settings.up_executors if s == Service.EXECUTOR else 1 for s in SERVICES}
    return defaults | (overrides or {})


def service_names(settings: Settings, overrides: dict[str, int] | None = None
                  ) -> list[tuple[str, str, int]]:
    """(process name, service, k) of every service process: ``executor``, ``executor-2``..."""
    return [(service if k == 0 else f"{service}-{k + 1}", service, k)
            for service, copies in instance_counts(settings, overrides).items()
            for k in range(copies)]


class Supervisor:
    """Args:
        settings: the supervisor's own settings (ports, data dir, fsync policy).
        cluster_size: NATS servers to start (1: the single embedded server).
        instances: processes per service named in ``--replicas`` (``parse_instances``).
    """

    def __init__(self, settings: Settings, *, cluster_size: int = 1,
                 instances: dict[str, int] | None = None) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.cluster_size = cluster_size
        self.overrides = instances or {}
        self.instances = instance_counts(settings, self.overrides)
        self.cluster: NatsCluster | None = None
        self.logs = Logs(self.data_dir / "logs", max_bytes=settings.log_max_bytes,
                         backups=settings.log_backups)
        self.servers: list[NatsProcess] = []
        self.services: list[ServiceProcess] = []
        self.stopping = False

    @property
    def nats(self) -> EmbeddedNats | None:
        return self.servers[0].server if self.servers else None

    @property
    def processes(self) -> list[Supervised]:
        return [*self.servers, *self.services]

    @property
    def children(self) -> list[ServiceProcess]:
        return self.services

    def preflight(self) -> None:
        gw = self.settings.gateway
        for port in range(gw.port, gw.port + self.instances["gateway"]):
            if not port_is_free(port, gw.host):
                raise QuantopsError(
                    f"gateway port {gw.host}:{port} is already in use: stop what uses it or "
                    "set QUANTOPS_GATEWAY_PORT", details={"port": port})

    def start(self) -> None:
        self.preflight()
        become_subreaper()
        key_file = self.data_dir / ADMIN_KEY_FILE
        first_start = not key_file.exists()
        nats_url = self.settings.nats_url
        auth: natsauth.EmbeddedAuth | None = None
        if not nats_url:
            # Each service connects as its own NATS user with only its own subjects, so a local
            # process cannot bypass the gateway by publishing to internal subjects.
            auth = natsauth.embedded_auth(self.data_dir)
            nats_url = (self._start_cluster(auth) if self.cluster_size > 1
                        else self._start_nats(auth))
        base_env = {**os.environ, "QUANTOPS_NATS_URL": nats_url,
                    "QUANTOPS_DATA_DIR": str(self.data_dir), **self._cluster_env()}
        base = self.settings.metrics_base_port
        for i, (name, service, k) in enumerate(service_names(self.settings, self.overrides)):
            port = base + i if base else 0
            env = {**base_env, "QUANTOPS_METRICS_PORT": str(port),
                   **self._gateway_env(service, k)}
            if auth:
                env |= auth.env(service)
            child = ServiceProcess(name, service, env, self.logs)
            child.spawn()
            self.services.append(child)
            print(f"{name:<12} pid {child.pid:<8} metrics :{port or 'auto'}  "
                  f"log {self.logs.path(name)}")
        gw = self.settings.gateway
        gateways = ", ".join(f"http://{gw.host}:{gw.port + k}"
                             for k in range(self.instances["gateway"]))
        print(f"\ngateway      {gateways}   (Ctrl-C stops everything)")
        if first_start:
            self._announce_admin_key(key_file)

    def _start_nats(self, auth: natsauth.EmbeddedAuth) -> str:
        s = self.settings
        server = embedded_nats(s, self.data_dir / "nats", extra_config=auth.server_config())
        unit = NatsProcess("nats-server", server, self.logs)
        unit.spawn()
        self.servers.append(unit)
        print(f"nats-server  pid {unit.pid:<8} {server.url}  (JetStream in {server.store_dir}, "
              f"sync_interval {s.nats_sync_interval or 'NATS default'}, GOMEMLIMIT "
              f"{f'{s.nats_memory_limit / 2**20:.0f} MiB' if s.nats_memory_limit else 'none'})")
        return server.url

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
        """Restart dead processes on their schedule and reap orphans until asked to stop."""
        while not self.stopping:
            self.tick(time.monotonic())
            time.sleep(0.1)

    def tick(self, now: float) -> None:
        for unit in self.processes:
            if self.stopping:
                return
            r = unit.restarts
            if r.due_at is None:
                code = unit.exit_code()
                if code is None:
                    continue
                delay = r.died(now)
                print(f"{unit.name} exited with {code}; restarting in {delay:.2f}s",
                      file=sys.stderr)
            elif now >= r.due_at:
                self._respawn(unit)
                print(f"{unit.name} restarted: pid {unit.pid}", file=sys.stderr)
        reap_orphans({u.pid for u in self.processes if u.pid})

    def _respawn(self, unit: Supervised) -> None:
        try:
            unit.spawn()
        except QuantopsError as e:  # e.g. the port still held by a dying server: try again
            print(f"{unit.name} did not start: {e.message}", file=sys.stderr)
            unit.restarts.died(time.monotonic())

    def stop(self) -> None:
        self.stopping = True
        for child in self.services:
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for child in self.services:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for unit in self.servers:
            unit.server.stop()
        if self.cluster:
            self.cluster.stop()
        reap_orphans(set())
        self.logs.drain()


def become_subreaper() -> None:
    """Orphaned descendants (a killed executor's workers) become our children, to be reaped."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_child_subreaper = 36
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_child_subreaper, 1)


def reap_orphans(own: set[int]) -> int:
    """Reap exited children that are not one of ``own`` (those are polled by their Popen, which
    must keep their exit codes); returns how many."""
    reaped = 0
    for pid in _children() - own:
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            reaped += bool(done)
    return reaped


def _children() -> set[int]:
    me = str(os.getpid())
    found: set[int] = set()
    for task in Path(f"/proc/{me}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(p) for p in (task / "children").read_text().split()}
    return found


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
