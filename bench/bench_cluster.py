"""The price of replication: quantops on a three-member JetStream cluster (every stream R3)
beside one server (R1), same run, same client code.

    python -m bench.bench_cluster [--tasks N] [--ops N] [--mib N] [--sync always]

Per stack: executor throughput (``noop`` tasks published to the queue, until every one is
recorded succeeded), state put and compare-and-set at 64 concurrent through
``StateClient``, and registry upload MB/s (``RegistryClient.register`` of a binary artifact).
One process of each service; both stacks keep the same fsync policy (``--sync``), so the
difference is replication alone.
"""

from __future__ import annotations

import argparse
import os
import time

import uvloop
from nats.js.kv import KeyValue

from bench.bench_executor import executor_run, wait_executors
from bench.bench_state import DOC, KEYS, operations
from bench.common import median, run_load
from bench.stacks import Stack
from shared.bus import Bus
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.registry import ArtifactFormat, VersionSpec

MiB = 1024 * 1024
SERVICES = {"state": 1, "executor": 1, "registry": 1}


async def state_rates(state: StateClient, kv: KeyValue, ops: int) -> dict[str, float]:
    """Put and CAS put through the state service at 64 concurrent (``bench_state``'s
    operations: each CAS names the revision its key's last write returned)."""
    for i in range(KEYS):
        await state.put("bench", f"k{i}", DOC)
    service = {name: svc for name, (svc, _raw) in operations(state, kv, "bench").items()}
    out = {}
    for name in ("put", "CAS put"):
        await run_load("warm-up", service[name], total=min(ops, 500), concurrency=64)
        out[f"state {name}/s (c=64)"] = (await run_load(name, service[name], total=ops,
                                                         concurrency=64)).rate
    return out


async def upload_rate(registry: RegistryClient, mib: int, rounds: int) -> float:
    data = os.urandom(mib * MiB)
    spec = VersionSpec(format=ArtifactFormat.BINARY)
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        await registry.register("bench-cluster", data, spec)
        rates.append(len(data) / (time.perf_counter() - t) / 1e6)
    return median(rates)


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    bus = await Bus.connect(stack.settings(), service="bench")
    try:
        await stack.wait(bus)
        await wait_executors(stack.url, 1)
        await executor_run(stack.url, min(500, args.tasks))  # warm-up
        tasks = median([(await executor_run(stack.url, args.tasks))[0]
                        for _ in range(args.rounds)])
        out = {"executor tasks/s": tasks}
        kv = await bus.js.create_key_value(bucket="bench_raw", history=64, direct=True,
                                           replicas=stack.members)
        out |= await state_rates(StateClient(bus), kv, args.ops)
        out["registry upload MB/s"] = await upload_rate(RegistryClient(bus), args.mib,
                                                        args.rounds)
        return out
    finally:
        await bus.close()


async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, float]] = {}
    for members in (1, 3):
        stack = Stack(members, sync_interval=args.sync, services=SERVICES).start()
        try:
            results[stack.label] = await measure(stack, args)
        finally:
            stack.stop()
    single, cluster = results["1 node R1"], results["3 nodes R3"]
    print(f"{'':<26} {'1 node R1':>12} {'3 nodes R3':>12} {'R3 / R1':>9}")
    for name in single:
        print(f"{name:<26} {single[name]:>12,.1f} {cluster[name]:>12,.1f} "
              f"{cluster[name] / single[name]:>9.0%}")
    print(f"\nfsync: {args.sync or 'nats-server default (2m)'} on every server; one process "
          f"per service; {os.cpu_count()} CPU(s) shared by all servers, services and this "
          f"client; medians of {args.rounds} rounds (tasks, uploads).")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=5000, help="noop tasks per round")
    p.add_argument("--ops", type=int, default=10_000, help="state operations per row")
    p.add_argument("--mib", type=int, default=16, help="artifact size")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sync", default="", help="sync_interval of every server ('always')")
    return p.parse_args()


if __name__ == "__main__":
    uvloop.run(main(_args()))
