"""Executor throughput and latency beside a bare nats-py JetStream loop, same server, same run.

    python -m bench.bench_executor [--tasks 20000] [--durable]

1. bare loop: ``publish_async`` N messages (with ``Nats-Msg-Id``) to a work-queue stream, pull
   them in batches and ack each: the JetStream ceiling of this message flow in Python.
2. executor, 1 and 2 processes: N ``noop`` tasks published the same way to
   ``tasks.queue.normal.<id>``, timed until every task's ``succeeded`` record is durable (its
   event is published only after the KV write is acknowledged); then every record is read back.
3. submit-to-start latency on an idle system: one ``noop`` at a time, ``started_at`` (recorded
   by the executor) minus the submitter's clock just before publishing.

By default the nats-server runs with the NATS default fsync policy (what the issue's bare-loop
figure was measured with); ``--durable`` uses ``sync_interval: always`` as the Helm chart does,
where every acknowledged write is fsynced and both loops are bound by the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
import uvloop
from nats.aio.msg import Msg
from nats.js import api

from shared.contracts.executor import (
    TaskMessage,
    TaskRecord,
    new_id,
    queue_subject,
    task_event_subject,
)
from shared.natsserver import EmbeddedNats, free_port
from shared.subjects import Bucket
from tests.support import ServiceProcess, service_env, wait_healthy

_encode = msgspec.json.Encoder().encode
_record = msgspec.json.Decoder(TaskRecord)
NOOP = _encode(TaskMessage(type="noop", input=msgspec.Raw(b"{}")))
WINDOW = 2000  # publish_async futures in flight


class Server:
    """A private nats-server: NATS defaults, or the project's durable config."""

    def __init__(self, tmp: Path, durable: bool) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.durable = durable
        self.tmp = tmp
        self.embedded: EmbeddedNats | None = None

    def start(self) -> Server:
        self.embedded = EmbeddedNats(self.tmp, port=self.port,
                                     sync_interval="always" if self.durable else "")
        self.embedded.start()
        return self

    @property
    def pid(self) -> int:
        process = self.embedded.process if self.embedded else None
        assert process is not None
        return process.pid

    def stop(self) -> None:
        if self.embedded:
            self.embedded.stop()


async def publish_all(js: nats.js.JetStreamContext, subjects: list[str], data: bytes) -> None:
    futures: list[asyncio.Future[object]] = []
    for subject in subjects:
        token = subject.rpartition(".")[2]
        futures.append(await js.publish_async(subject, data, headers={"Nats-Msg-Id": token}))
        if len(futures) >= WINDOW:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)


async def bare_loop(url: str, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BARE", subjects=["bare.>"],
                        retention=api.RetentionPolicy.WORK_QUEUE, duplicate_window=120)
    psub = await js.pull_subscribe("bare.>", durable="bare", config=api.ConsumerConfig(
        ack_wait=30, max_ack_pending=-1))
    subjects = [f"bare.normal.{new_id()}" for _ in range(n)]

    async def consume() -> None:
        done = 0
        while done < n:
            with contextlib.suppress(nats.errors.TimeoutError):
                for m in await psub.fetch(256, timeout=1):
                    await m.ack()
                    done += 1

    started = time.perf_counter()
    await asyncio.gather(publish_all(js, subjects, NOOP), consume())
    took = time.perf_counter() - started
    await nc.close()
    return n / took


async def executor_run(url: str, n: int) -> tuple[float, int]:
    """Throughput of n noop tasks; returns (tasks/s, records read back as succeeded)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    ids = [new_id() for _ in range(n)]
    wanted = set(ids)
    finished = asyncio.Event()
    seen: set[str] = set()

    async def on_event(msg: Msg) -> None:
        task_id = msg.subject.rpartition(".")[2]
        if task_id in wanted:
            seen.add(task_id)
            if len(seen) == n:
                finished.set()

    sub = await nc.subscribe(task_event_subject("succeeded", "*"), cb=on_event)
    started = time.perf_counter()
    await publish_all(js, [queue_subject("normal", i) for i in ids], NOOP)
    await asyncio.wait_for(finished.wait(), 300)
    took = time.perf_counter() - started
    await sub.unsubscribe()
    kv = await js.key_value(Bucket.TASK_STATUS)
    ok = 0
    for i in ids[:: max(1, n // 2000)]:  # a sample of 2,000 records, read back from the bucket
        rec = _record.decode((await kv.get(i)).value or b"{}")
        ok += rec.status == "succeeded"
    await nc.close()
    return n / took, ok


async def latency(url: str, samples: int) -> tuple[float, float]:
    """Submit-to-start of single noop tasks on an idle system: (p50 ms, p99 ms)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    out: list[float] = []
    for _ in range(samples):
        task_id = new_id()
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_done(m: Msg, f: asyncio.Future[bytes] = got) -> None:
            if not f.done():
                f.set_result(m.data)

        sub = await nc.subscribe(task_event_subject("succeeded", task_id), cb=on_done)
        submitted = time.time()
        await js.publish(queue_subject("normal", task_id), NOOP,
                         headers={"Nats-Msg-Id": task_id})
        rec = _record.decode(await asyncio.wait_for(got, 10))
        await sub.unsubscribe()
        out.append(((rec.started_at or 0) - submitted) * 1000)
        await asyncio.sleep(0.01)
    await nc.close()
    q = statistics.quantiles(out, n=100)
    return q[49], q[98]


async def wait_executors(url: str, count: int, timeout_s: float = 60.0) -> None:
    """Until ``count`` executor processes pull: each keeps a pull request waiting on every
    priority consumer."""
    await wait_healthy(url, "executor", timeout_s=timeout_s)
    nc = await nats.connect(url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = await nc.jetstream().consumer_info("QUANTOPS_TASKS", "executor-high")
            if (info.num_waiting or 0) >= count:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"fewer than {count} executors pulling after {timeout_s} s")
    finally:
        await nc.close()


def start_executors(url: str, count: int, tmp: Path) -> list[ServiceProcess]:
    env = {"QUANTOPS_EXECUTOR_WORKER_PROCESSES": "1", "QUANTOPS_LOG_LEVEL": "WARNING"}
    return [ServiceProcess("executor", service_env(url, tmp / "data", **env),
                           tmp / f"executor-{i}.log").start() for i in range(count)]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Outcome:
    bare: float
    rate: float
    verified: int
    cpu_us: dict[str, float]  # CPU per task, by who spent it


async def scenario(n: int, executors: int, durable: bool) -> Outcome:
    """Bare loop and executor on one fresh server, with the CPU each side spent per task."""
    with tempfile.TemporaryDirectory(prefix="quantops-bench-") as tmp:
        server = Server(Path(tmp), durable).start()
        procs: list[ServiceProcess] = []
        try:
            before = (time.process_time(), cpu_s(server.pid))
            bare = await bare_loop(server.url, n)
            cpu = {"bare loop": time.process_time() - before[0],
                   "server (bare)": cpu_s(server.pid) - before[1]}
            procs = start_executors(server.url, executors, Path(tmp))
            await wait_executors(server.url, executors)
            await executor_run(server.url, min(2000, n))  # warm-up
            pids = [server.pid, *(p.pid for p in procs)]
            before_all, mine = [cpu_s(p) for p in pids], time.process_time()
            rate, ok = await executor_run(server.url, n)
            spent = [cpu_s(p) - b for p, b in zip(pids, before_all, strict=True)]
            cpu |= {"submitter": time.process_time() - mine, "server (executor)": spent[0],
                    "executors": sum(spent[1:])}
            return Outcome(bare, rate, ok, {k: v / n * 1e6 for k, v in cpu.items()})
        finally:
            for p in procs:
                p.stop()
            server.stop()


async def latency_scenario(durable: bool, samples: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="quantops-bench-") as tmp:
        server = Server(Path(tmp), durable).start()
        procs = start_executors(server.url, 1, Path(tmp))
        try:
            await wait_healthy(server.url, "executor", timeout_s=60)
            await latency(server.url, 20)  # warm-up
            return await latency(server.url, samples)
        finally:
            for p in procs:
                p.stop()
            server.stop()


async def main(n: int, durable: bool) -> None:
    mode = "sync_interval: always" if durable else "NATS default fsync"
    print(f"executor benchmark: {n:,} noop tasks, nats-server with {mode}\n")
    print(f"{'flow':<52} {'tasks/s':>9} {'vs bare':>8}")
    for executors in (1, 2):
        out = await scenario(n, executors, durable)
        sample = min(2000, n)
        print(f"{'bare nats-py publish/pull/ack loop':<52} {out.bare:>9,.0f}")
        print(f"{f'executor x{executors}: submit -> succeeded recorded':<52} {out.rate:>9,.0f} "
              f"{out.rate / out.bare:>7.0%}   ({out.verified}/{sample} sampled records "
              "succeeded)")
        print("    CPU per task: " + ", ".join(f"{k} {v:.0f} us" for k, v in out.cpu_us.items()))
    p50, p99 = await latency_scenario(durable, 300)
    print(f"\nsubmit-to-start latency, idle, 1 executor: p50 {p50:.2f} ms  p99 {p99:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--durable", action="store_true")
    args = parser.parse_args()
    uvloop.run(main(args.tasks, args.durable))
    sys.exit(0)
