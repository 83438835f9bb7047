"""The state service against etcd at equal durability, same run, Python clients on both sides.

    python -m bench.bench_etcd [--ops N] [--rounds N] [--state-replicas N]

etcd: three members on loopback (Debian's ``etcd-server`` 3.4; ``apt-get install -y
etcd-server``), through ``aetcd``: it acknowledges a write once a quorum has it fsynced.
quantops: ``quantops serve state`` on a three-member JetStream cluster, every server with
``sync_interval: always`` and the bucket at R3: acknowledged once a quorum has it on disk.
Beside both, raw nats-py KV on an R3 bucket of the same cluster (the floor under the
service's hop). Put, compare-and-set put and get, at 1 and 64 concurrent, medians of
``--rounds`` rounds; then the CPU each process spent per operation.

Bar (issue 18): at 64 concurrent, state put >= etcd put, state CAS and get >= 1.5x etcd.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench.bench_state import DOC, KEYS, operations
from bench.common import CpuMeter, median, run_load
from bench.stacks import Stack
from shared.bus import Bus
from shared.clients.state import StateClient
from shared.natsserver import free_port

Op = Callable[[int], Awaitable[object]]
BAR = {"put": 1.0, "CAS put": 1.5, "get": 1.5}
RAW, STATE = "raw nats-py KV", "quantops state"


def etcd_binary() -> str | None:
    return shutil.which("etcd") or next(
        (p for p in ("/usr/bin/etcd", "/usr/local/bin/etcd") if Path(p).exists()), None)


class EtcdCluster:
    """Three etcd members on loopback, each with its own client and peer port and data dir."""

    def __init__(self, binary: str, size: int = 3) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="quantops-bench-etcd-"))
        self.members = [(f"m{i}", free_port(), free_port()) for i in range(size)]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        initial = ",".join(f"{n}=http://127.0.0.1:{peer}" for n, _, peer in self.members)
        for name, client, peer in self.members:
            log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 (the process holds it)
            self.procs.append(subprocess.Popen([
                self.binary, "--name", name, "--data-dir", str(self.dir / name),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "quantops-bench"],
                stdout=log, stderr=log))

    async def wait(self, timeout_s: float = 60.0) -> None:
        import aetcd

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                async with aetcd.Client(host="127.0.0.1", port=self.members[0][1],
                                        timeout=2) as c:
                    await c.put(b"ready", b"1")
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(15)
        shutil.rmtree(self.dir, ignore_errors=True)


def etcd_operations(clients: list[Any]) -> dict[str, Op]:
    """Put, CAS put (a transaction comparing the key's mod revision) and get (linearizable,
    etcd's default), spread over one client per member as a load balancer would."""
    data = msgspec.json.encode(DOC)
    slots: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for k in range(64):
        slots.put_nowait((k, 0))

    def client(i: int) -> Any:
        return clients[i % len(clients)]

    async def cas(i: int) -> None:
        k, rev = await slots.get()
        c = client(i)
        try:
            ok, responses = await c.transaction(
                compare=[c.transactions.mod(b"cas%d" % k) == rev],
                success=[c.transactions.put(b"cas%d" % k, data)], failure=[])
            assert ok, "a CAS on a key this worker owns cannot conflict"
            rev = responses[0].response_put.header.revision
        finally:
            slots.put_nowait((k, rev))

    return {
        "put": lambda i: client(i).put(b"k%d" % (i % KEYS), data),
        "CAS put": cas,
        "get": lambda i: client(i).get(b"k%d" % (i % KEYS)),
    }


Key = tuple[str, str, int]  # (system, operation, concurrency)


def label(key: Key) -> str:
    system, name, conc = key
    return f"{system:<16} {name:<8} c={conc}"


async def round_(systems: dict[str, dict[str, Op]], ops: int, meter: CpuMeter
                 ) -> tuple[dict[Key, float], dict[Key, dict[str, float]]]:
    rates: dict[Key, float] = {}
    cpu: dict[Key, dict[str, float]] = {}
    for name in ("put", "CAS put", "get"):
        for conc in (1, 64):
            n = ops // 8 if conc == 1 else ops
            for system, table in systems.items():
                await run_load("warm-up", table[name], total=min(n, 300), concurrency=conc)
                before = meter.snapshot()
                key = (system, name, conc)
                rates[key] = (await run_load(label(key), table[name], total=n,
                                             concurrency=conc)).rate
                cpu[key] = CpuMeter.per_op_us(before, meter.snapshot(), n)
    return rates, cpu


def report(runs: list[dict[Key, float]], cpu: dict[Key, dict[str, float]]) -> str:
    rates = {key: median([r[key] for r in runs]) for key in runs[0]}
    lines = [f"{'operation':<34} {'ops/s':>9} {'vs etcd':>8} {'vs raw KV':>9}"]
    verdicts = []
    for key, rate in rates.items():
        system, name, conc = key
        vs_etcd = rate / rates[("etcd", name, conc)]
        vs_raw = rate / rates[(RAW, name, conc)]
        lines.append(f"{label(key):<34} {rate:>9,.0f} "
                     f"{'' if system == 'etcd' else f'{vs_etcd:.2f}x':>8} "
                     f"{f'{vs_raw:.0%}' if system == STATE else '':>9}")
        if system == STATE and conc == 64:
            verdicts.append(f"  {name:<8} {vs_etcd:.2f}x etcd (bar {BAR[name]}x): "
                            f"{'met' if vs_etcd >= BAR[name] else 'NOT met'}")
    roles = list(next(iter(cpu.values())))
    lines += ["", f"{'CPU µs per operation (last round)':<34} "
              + " ".join(f"{r:>14}" for r in roles)]
    lines += [f"{label(key):<34} " + " ".join(f"{used[r]:>14.1f}" for r in roles)
              for key, used in cpu.items()]
    lines += ["", "bar at 64 concurrent (medians of the rounds):", *verdicts]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    binary = etcd_binary()
    try:
        import aetcd
    except ImportError:
        aetcd = None
    if binary is None or aetcd is None:
        print("bench_etcd skipped: needs etcd (apt-get install -y etcd-server) and aetcd "
              "(pip install -e '.[bench]')")
        return 0
    etcd = EtcdCluster(binary)
    stack = Stack(3, sync_interval="always", services={"state": args.state_replicas})
    etcd.start()
    stack.start()
    clients: list[Any] = []
    try:
        await etcd.wait()
        bus = await Bus.connect(stack.settings(), service="bench")
        await stack.wait(bus)
        kv = await bus.js.create_key_value(bucket="bench_raw", history=64, direct=True,
                                           replicas=3)
        state = StateClient(bus)
        clients = [aetcd.Client(host="127.0.0.1", port=port) for _, port, _ in etcd.members]
        for i in range(KEYS):
            await state.put("bench", f"k{i}", DOC)
            await kv.put(f"k{i}", msgspec.json.encode(DOC))
            await clients[0].put(b"k%d" % i, msgspec.json.encode(DOC))
        ops = operations(state, kv, "bench")
        systems = {"etcd": etcd_operations(clients),
                   RAW: {n: raw for n, (_svc, raw) in ops.items()},
                   STATE: {n: svc for n, (svc, _raw) in ops.items()}}
        meter = CpuMeter({"nats-servers": stack.server_pids(), "etcd members": etcd.pids,
                          "state service": stack.service_pids("state")})
        runs: list[dict[Key, float]] = []
        cpu: dict[Key, dict[str, float]] = {}
        for _ in range(args.rounds):
            rates, cpu = await round_(systems, args.ops, meter)
            runs.append(rates)
        print(report(runs, cpu))
        print(f"\nfsync on every acknowledged write on both sides (etcd always; nats-server "
              f"sync_interval: always), three members each, loopback; {args.state_replicas} "
              f"state process(es); {os.cpu_count()} CPU(s) shared by everything.")
        await bus.close()
    finally:
        for c in clients:
            await c.close()
        stack.stop()
        etcd.stop()
    return 0


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=5000, help="operations per 64-way row")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--state-replicas", type=int, default=1)
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(uvloop.run(main(_args())))
