"""Quant workloads: a 16-trial sweep with 1 and with 2 executor processes (the scaling), and the
latency of a prediction request on a cached production model beside a bare NATS request/reply.

    python -m bench.bench_quant [--trials 16] [--repeats 2] [--predictions 2000]

Setup: a private nats-server (NATS default fsync), real ``state`` and ``registry`` processes
and the real demo prices. Executors run with ``QUANTOPS_EXECUTOR_WORKER_PROCESSES=1`` and
``QUANTOPS_EXECUTOR_CONCURRENCY=2``: one CPU worker each, so 1 executor is one core of training
and 2 executors are two; the second slot is for the sweep parent, which only waits for its
children and must not take the one slot a trial needs. Trials are random forests differing only
in ``min_samples_leaf`` (equal cost), so the ratio measures scheduling, not luck. The sweep is
timed from submission to its record saying ``succeeded`` (16 trainings, 32 registrations, 16
trial records); 1 and 2 executors alternate, ``--repeats`` times each, and the best run of each
is compared (others share these cores: the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nats
import uvloop

from bench.common import Result, run_load, table
from shared.bus import Bus, connect_nats
from shared.clients.datasets import DatasetClient
from shared.clients.executor import ExecutorClient
from shared.clients.quant import QuantClient
from shared.clients.registry import RegistryClient
from shared.natsserver import EmbeddedNats, free_port
from shared.settings import Settings
from tests.support import ServiceProcess, service_env, wait_healthy

EXECUTOR_ENV = {"QUANTOPS_EXECUTOR_WORKER_PROCESSES": "1", "QUANTOPS_EXECUTOR_CONCURRENCY": "2",
                "QUANTOPS_LOG_LEVEL": "WARNING"}
DATA = {"symbols": ["AAPL", "IBM", "MSFT"], "start": "2005-01-01",
        "walk_forward": {"n_splits": 3, "min_train_size": 504}}


def sweep_input(trials: int, model: str) -> dict[str, object]:
    leaves = [10 + 10 * i for i in range(trials)]
    return {**DATA, "estimator": "random_forest", "model_name": model, "strategy": "grid",
            "n_trials": trials, "base": {"n_estimators": 30, "max_depth": 5},
            "space": {"min_samples_leaf": {"type": "choice", "values": leaves}}}


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # fields after the command name


def own_cpu_s(pid: int) -> float:
    """CPU seconds of one process (its own threads only)."""
    return sum(int(f) for f in _stat(pid)[11:13]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """CPU seconds of a process and every live descendant (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
    family, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in family} - family
        family |= more
        grew = bool(more)
    total = 0
    for pid in family:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


class Stack:
    """nats-server, state and registry; executors come and go."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nats = EmbeddedNats(tmp / "nats", port=free_port(), monitor_port=0, sync_interval="")
        self.procs: list[ServiceProcess] = []

    def start(self, service: str, **env: str) -> ServiceProcess:
        proc = ServiceProcess(service, service_env(self.nats.url, self.tmp / "data", **env),
                              self.tmp / f"{service}-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    async def up(self) -> Bus:
        self.nats.start()
        for service in ("state", "registry"):
            self.start(service, QUANTOPS_LOG_LEVEL="WARNING")
            await wait_healthy(self.nats.url, service, timeout_s=60)
        settings = Settings.from_env({"QUANTOPS_NATS_URL": self.nats.url})
        nc = await connect_nats(settings, name="bench-quant")
        return Bus(nc, service="bench", timeout_s=60)

    def down(self) -> None:
        for p in self.procs:
            p.stop()
        self.nats.stop()


async def executors(stack: Stack, count: int) -> list[ServiceProcess]:
    procs = [stack.start("executor", **EXECUTOR_ENV) for _ in range(count)]
    await wait_healthy(stack.nats.url, "executor", timeout_s=60, instances=count)
    nc = await nats.connect(stack.nats.url)
    try:  # every executor pulling: each keeps a request waiting on the normal consumer
        for _ in range(1200):
            info = await nc.jetstream().consumer_info("QUANTOPS_TASKS", "executor-normal")
            if (info.num_waiting or 0) >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return procs


async def timed_sweep(bus: Bus, stack: Stack, count: int, trials: int, model: str) -> float:
    procs = await executors(stack, count)
    try:
        client = ExecutorClient(bus)
        others = {p.service: p.pid for p in stack.procs if p.service != "executor"}
        others["nats-server"] = stack.nats.process.pid  # type: ignore[union-attr]
        before = {n: tree_cpu_s(pid) for n, pid in others.items()}
        before |= {f"executor {i + 1} (+ workers)": tree_cpu_s(p.pid)
                   for i, p in enumerate(procs)}
        before |= {f"executor {i + 1} loop": own_cpu_s(p.pid) for i, p in enumerate(procs)}
        mine = time.process_time()
        started = time.perf_counter()
        task = await client.submit("sweep", sweep_input(trials, model))
        record = await client.wait(task.task_id, timeout_s=1800)
        took = time.perf_counter() - started
        assert record.status == "succeeded", record.error
        assert isinstance(record.result, dict) and record.result["succeeded"] == trials
        after = {n: tree_cpu_s(pid) for n, pid in others.items()}
        after |= {f"executor {i + 1} (+ workers)": tree_cpu_s(p.pid)
                  for i, p in enumerate(procs)}
        after |= {f"executor {i + 1} loop": own_cpu_s(p.pid) for i, p in enumerate(procs)}
        spent = {n: after[n] - before[n] for n in before} | {
            "bench client": time.process_time() - mine}
        total = sum(v for n, v in spent.items() if not n.endswith("loop"))
        print("    CPU s: " + ", ".join(f"{n} {v:.1f}" for n, v in spent.items())
              + f"; total {total:.1f} in {took:.1f} s wall")
        await timeline(client, record.result["trials"], started=record.started_at or 0.0,
                       parent=record.worker)
        return took
    finally:
        for p in procs:
            p.stop()


async def timeline(client: ExecutorClient, trials: list[dict[str, object]], *,
                   started: float, parent: str) -> None:
    """Per executor: trials run, time in trials, and the span from the sweep's start."""
    records = [await client.get(str(t["task_id"])) for t in trials
               if t.get("ran_in") != "sweep"]
    own = len(trials) - len(records)
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        by_worker.setdefault(r.worker, []).append((r.started_at or 0.0, r.finished_at or 0.0))
    for worker, spans in sorted(by_worker.items()):
        print(f"    {worker}: {len(spans)} child trials, first start "
              f"+{min(a for a, _ in spans) - started:.2f} s, last end "
              f"+{max(b for _, b in spans) - started:.2f} s")
    print(f"    sweep task on {parent}: {own} trial(s) of its own")


async def sweeps(bus: Bus, stack: Stack, trials: int, repeats: int) -> dict[int, list[float]]:
    await timed_sweep(bus, stack, 1, 2, "bench-warmup")  # imports, dataset, catalog
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(repeats):
        for count in (1, 2):
            took = await timed_sweep(bus, stack, count, trials, f"bench-rf-{count}-{r}")
            times[count].append(took)
            print(f"  sweep of {trials} trials, {count} executor(s), run {r + 1}: {took:.1f} s",
                  flush=True)
    return times


async def predictions(bus: Bus, stack: Stack, n: int) -> list[Result]:
    procs = [stack.start("executor", QUANTOPS_LOG_LEVEL="WARNING")]
    try:
        await wait_healthy(stack.nats.url, "executor", timeout_s=60)
        record = await ExecutorClient(bus).submit("train_model", {**DATA, "model_name":
                                                                  "bench-ridge"})
        done = await ExecutorClient(bus).wait(record.task_id, timeout_s=300)
        assert done.status == "succeeded", done.error
        await RegistryClient(bus).promote("bench-ridge", 1)
        quant = QuantClient(bus)
        raw = await nats.connect(stack.nats.url)

        async def respond(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await raw.subscribe("bench.echo", cb=respond)
        payload = b'{"model":"bench-ridge@production","symbols":["AAPL","MSFT"]}'

        async def predict(i: int) -> object:
            return await quant.predict("bench-ridge@production", symbols=["AAPL", "MSFT"])

        async def echo(i: int) -> object:
            return await raw.request("bench.echo", payload, timeout=5)

        await run_load("warm-up", predict, total=200, concurrency=1)
        rows = [await run_load("bare nats-py request/reply (echo)", echo, total=n,
                               concurrency=1),
                await run_load("executor.quant.predict, cached production", predict, total=n,
                               concurrency=1)]
        await raw.close()
        return rows
    finally:
        for p in procs:
            p.stop()


async def main(trials: int, repeats: int, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quantops-bench-") as tmp:
        stack = Stack(Path(tmp))
        bus = await stack.up()
        try:
            demo = await DatasetClient(bus).seed_demo()
            print(f"quant benchmark on {demo.name} ({demo.rows} real daily bars), "
                  f"{trials}-trial random-forest sweep\n", flush=True)
            times = await sweeps(bus, stack, trials, repeats)
            one, two = min(times[1]), min(times[2])
            print(f"\n{'sweep wall time':<44} {'best s':>8} {'median s':>9}")
            for count in (1, 2):
                print(f"{f'{count} executor process(es), 1 worker each':<44} "
                      f"{min(times[count]):>8.1f} {statistics.median(times[count]):>9.1f}")
            print(f"speed-up with 2 processes: {one / two:.2f}x (best runs), "
                  f"{statistics.median(times[1]) / statistics.median(times[2]):.2f}x (medians)"
                  f"; bar >= 1.8x\n")
            rows = await predictions(bus, stack, n)
            print(table(rows, baseline={rows[1].name: rows[0].name}))
            print("bar: cached prediction p50 < 2 ms, p99 < 10 ms")
        finally:
            await bus.close()
            stack.down()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--predictions", type=int, default=2000)
    args = parser.parse_args()
    uvloop.run(main(args.trials, args.repeats, args.predictions))
    sys.exit(0)
