"""Shared benchmark helpers: a private nats-server, timing loops and the printed table."""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared.natsserver import EmbeddedNats, free_port


def start_server() -> EmbeddedNats:
    server = EmbeddedNats(Path(tempfile.mkdtemp(prefix="quantops-bench-")), port=free_port(),
                          sync_interval="")
    server.start()
    return server


@dataclass(frozen=True)
class Result:
    name: str
    ops: int
    seconds: float
    latencies_s: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies_s)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


async def run_load(name: str, op: Callable[[int], Awaitable[object]], *, total: int,
                   concurrency: int) -> Result:
    """``total`` calls of ``op`` by ``concurrency`` workers; per-call latency recorded."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, total, time.perf_counter() - started, latencies)


class CpuMeter:
    """CPU seconds (user + system) used by this process and by child processes, by role, so a
    row can say where each operation's cost went. Linux only (reads ``/proc``)."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        self.roles = roles

    @staticmethod
    def _pid_seconds(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        out = {"this client": me.ru_utime + me.ru_stime}
        for role, pids in self.roles.items():
            out[role] = sum(self._pid_seconds(p) for p in pids)
        return out

    @staticmethod
    def per_op_us(before: dict[str, float], after: dict[str, float], ops: int
                  ) -> dict[str, float]:
        return {k: (after[k] - before[k]) / ops * 1e6 for k in before}


def table(rows: list[Result], *, baseline: dict[str, str] | None = None) -> str:
    """Rows of ops/s, p50 and p99; ``baseline`` maps a row to the row it is compared with."""
    by_name = {r.name: r for r in rows}
    lines = [f"{'operation':<44} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12}"]
    for r in rows:
        ratio = ""
        if baseline and r.name in baseline:
            ratio = f"{r.rate / by_name[baseline[r.name]].rate:>11.0%}"
        lines.append(f"{r.name:<44} {r.rate:>10,.0f} {r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f} "
                     f"{ratio:>12}")
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values)
