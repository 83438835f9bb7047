"""A local JetStream cluster: N nats-server processes from the same wheel, routed on loopback.

Each member is an ``EmbeddedNats`` with its own client, route and monitoring port, its own
store directory and a server name derived from its client port (stable across restarts, so a
restarted member rejoins its Raft groups instead of appearing as a new peer). Every member
routes to every other; a member started alone keeps retrying its routes, which is what lets a
killed member be restarted into the running cluster.

Readiness is the server's own ``/healthz``: 200 once JetStream is current with the meta
leader, so streams created right after ``start`` get their replicas.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ServiceUnavailable
from shared.natsserver import EmbeddedNats, port_is_free

CLUSTER_NAME = "quantops"


@dataclass(frozen=True)
class MemberPorts:
    client: int
    route: int
    monitor: int


def cluster_block(own: MemberPorts, members: list[MemberPorts], *, name: str = CLUSTER_NAME
                  ) -> str:
    routes = ", ".join(f'"nats-route://127.0.0.1:{m.route}"' for m in members if m != own)
    return "\n".join([
        "cluster {",
        f"  name: {name}",
        f'  listen: "127.0.0.1:{own.route}"',
        f"  routes: [{routes}]",
        # A member restarted after the others keeps trying its routes instead of giving up.
        "  connect_retries: 120",
        "}",
    ])


def member_ports(size: int, *, client: int, route: int, monitor: int) -> list[MemberPorts]:
    """Consecutive ports from each base: member ``i`` listens on ``client + i`` and so on."""
    return [MemberPorts(client + i, route + i, monitor + i) for i in range(size)]


class NatsCluster:
    """Start, stop, kill and restart the members of a local cluster.

    Args:
        data_dir: member ``i`` keeps its config and store under ``data_dir / f"n{i}"``.
        ports: one ``MemberPorts`` per member (``member_ports``).
        extra_config: appended to every member's config (the same authorization on all).
        sync_interval: JetStream fsync policy of every member (``write_config``).
    """

    def __init__(self, data_dir: Path, ports: list[MemberPorts], *, extra_config: str = "",
                 sync_interval: str = "") -> None:
        if len(ports) < 1:
            raise ValueError("a cluster needs at least one member")
        self.data_dir = Path(data_dir)
        self.ports = ports
        self.log_dir: Path | None = None
        self.members = [
            EmbeddedNats(self.data_dir / f"n{i}", port=p.client, monitor_port=p.monitor,
                         extra_config=extra_config, sync_interval=sync_interval,
                         cluster=cluster_block(p, ports))
            for i, p in enumerate(ports)
        ]

    @property
    def urls(self) -> str:
        """Every member's client URL, comma-separated (what ``QUANTOPS_NATS_URL`` takes)."""
        return ",".join(m.url for m in self.members)

    def server_name(self, i: int) -> str:
        return f"quantops-{self.ports[i].client}"

    def preflight(self) -> list[int]:
        """Ports some other process already holds (empty: all free)."""
        return [p for m in self.ports for p in (m.client, m.route, m.monitor)
                if not port_is_free(p)]

    def start(self, *, log_dir: Path | None = None, timeout_s: float = 60.0) -> None:
        self.log_dir = log_dir
        for i in range(len(self.members)):
            self._start_member(i)
        self.wait_ready(timeout_s=timeout_s)

    def _start_member(self, i: int) -> None:
        log_file = self.log_dir / f"nats-server-{i}.log" if self.log_dir else None
        self.members[i].start(log_file=log_file)

    def restart(self, i: int, *, timeout_s: float = 60.0) -> None:
        """Start member ``i`` again (after ``kill`` or ``stop``) and wait until it is current."""
        self._start_member(i)
        self.wait_ready(timeout_s=timeout_s)

    def kill(self, i: int) -> None:
        """SIGKILL member ``i``: no lame duck, no flush, as a crash."""
        self.members[i].kill()

    def pause(self, i: int) -> None:
        """SIGSTOP member ``i``: its routes and clients go silent while its sockets stay open,
        a partition without touching the network."""
        self._signal(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self._signal(i, signal.SIGCONT)

    def _signal(self, i: int, sig: signal.Signals) -> None:
        process = self.members[i].process
        if process is None or process.poll() is not None:
            raise ServiceUnavailable(f"cluster member {i} is not running")
        process.send_signal(sig)

    def stop(self) -> None:
        for m in self.members:
            if m.process is not None and m.process.poll() is None:
                m.process.send_signal(signal.SIGCONT)  # a paused member cannot exit
            m.stop()

    def running(self) -> list[int]:
        return [i for i, m in enumerate(self.members)
                if m.process is not None and m.process.poll() is None]

    def monitor(self, i: int, path: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """A monitoring endpoint of member ``i`` as JSON (``/jsz``, ``/varz``, ``/healthz``)."""
        url = f"http://127.0.0.1:{self.ports[i].monitor}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                data: dict[str, Any] = json.loads(r.read())
                return data
        except urllib.error.HTTPError as e:
            data = json.loads(e.read() or b"{}")
            data.setdefault("status", f"http {e.code}")
            return data

    def healthy(self, i: int) -> bool:
        try:
            return self.monitor(i, "/healthz").get("status") == "ok"
        except OSError:
            return False

    def wait_ready(self, *, timeout_s: float = 60.0) -> None:
        """Until every running member reports JetStream healthy and a meta leader exists."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            up = self.running()
            if all(self.healthy(i) for i in up) and self.meta_leader() is not None:
                return
            time.sleep(0.2)
        raise ServiceUnavailable(f"NATS cluster not ready within {timeout_s}s",
                                 details={"running": self.running()})

    def meta_leader(self) -> int | None:
        """Index of the member leading JetStream's meta group, as the running members see it."""
        return self._index_of(lambda i: self.monitor(i, "/jsz").get("meta_cluster", {})
                              .get("leader"))

    def stream_leader(self, stream: str) -> int | None:
        """Index of the member leading ``stream``'s Raft group (any account)."""
        def leader(i: int) -> str | None:
            jsz = self.monitor(i, "/jsz?accounts=true&streams=true")
            for account in jsz.get("account_details", []):
                for s in account.get("stream_detail", []):
                    if s.get("name") == stream:
                        return str(s.get("cluster", {}).get("leader") or "") or None
            return None

        return self._index_of(leader)

    def _index_of(self, name_from: Any) -> int | None:
        names = [self.server_name(i) for i in range(len(self.members))]
        for i in self.running():
            try:
                name = name_from(i)
            except OSError:
                continue
            if name in names:
                return names.index(name)
        return None
