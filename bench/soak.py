"""Soak: the whole system under ``quantops up`` for a long time at a steady load.

    python -m bench.soak [--minutes 30] [--tasks-per-s 20] [--writes-per-s 20]
                         [--sweep-every-s 60] [--retention-s 60] [--nats-memory-mib 64]
                                                                      (``make soak``)

Load: noop tasks and state writes (each with a TTL) at fixed rates, a small sweep (two
``train_model`` trials on the bundled prices, ``keep_best`` 1, then a registry cleanup keeping 3
of the model, whose deleted versions take their evaluations along)
every ``--sweep-every-s``. Retention is set short (records, trials, state TTLs =
``--retention-s``; events and dead letters = max(60 s, that)) so it cycles many times.

Every minute it prints submit-to-start p50/p99 (from the ``succeeded`` events: ``started_at -
submitted_at`` of each noop task), the resident memory of every process, JetStream's store bytes,
the task record count and ``failed_summary`` latency; at the end a verdict against the bars
(p99 of the last 5 minutes within 1.5x of the first 5; the mean memory of each long-lived
process over the last 5 minutes within 10% of its mean over the 5 minutes after warm-up; store
bytes level off: the last 5 minutes' mean within 20% of the mean of the 5 minutes after
warm-up) and the path of a PNG of the series.
Not a test: it takes its duration and reports, it does not assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench.pngplot import Panel, draw
from bench.soakprobe import jsz, process_rss, streams
from shared import natsauth
from shared.bus import Bus, connect_nats
from shared.clients.executor import ExecutorClient
from shared.clients.http import Client
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.errors import QuantopsError
from shared.natsserver import free_port
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RECORDS = "KV_quantops_task_status"
SWEEP = {"symbols": ["IBM", "MSFT"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 3, "min_train_size": 252}, "estimator": "ridge",
         "space": {"alpha": {"type": "range", "low": 0.01, "high": 100.0, "log": True}},
         "n_trials": 2, "model_name": "soak-sweep", "keep_best": 1}


@dataclass
class Minute:
    minute: int
    p50_ms: float
    p99_ms: float
    tasks: int
    failed_summary_ms: float
    records: int
    store_bytes: int
    rss: dict[str, int]


@dataclass
class Soak:
    args: argparse.Namespace
    data_dir: Path
    ports: dict[str, int]
    latencies: list[tuple[float, float]] = field(default_factory=list)
    minutes: list[Minute] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    last_streams: dict[str, dict[str, int]] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        r = self.args.retention_s
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTOPS_", "OTEL_"))}
        return env | {
            "QUANTOPS_DATA_DIR": str(self.data_dir), "PYTHONPATH": str(ROOT),
            "QUANTOPS_NATS_PORT": str(self.ports["nats"]),
            "QUANTOPS_NATS_MONITOR_PORT": str(self.ports["monitor"]),
            "QUANTOPS_GATEWAY_PORT": str(self.ports["gateway"]),
            "QUANTOPS_METRICS_BASE_PORT": "0",
            "QUANTOPS_EXECUTOR_RECORD_TTL_S": str(r),
            "QUANTOPS_EXECUTOR_DEAD_LETTER_MAX_AGE_S": str(max(60, r)),
            "QUANTOPS_EVENTS_MAX_AGE_S": str(max(60, r)),
            "QUANTOPS_QUANT_TRIALS_TTL_S": str(r), "QUANTOPS_QUANT_BACKTESTS_TTL_S": str(r),
            "QUANTOPS_QUANT_SIGNALS_TTL_S": str(r),
            **({"QUANTOPS_NATS_MEMORY_LIMIT": str(self.args.nats_memory_mib * 2**20)}
               if self.args.nats_memory_mib else {}),
        }

    def start(self) -> None:
        log = open(self.data_dir.parent / "up.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"],
                                     env=self.env(), stdout=log, stderr=log, cwd=ROOT)
        url = f"http://127.0.0.1:{self.ports['gateway']}/readyz"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"not ready in 180 s; see {self.data_dir.parent / 'up.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def run(self) -> None:
        settings = natsauth.with_local_credentials(Settings.from_env({
            "QUANTOPS_NATS_URL": f"nats://127.0.0.1:{self.ports['nats']}",
            "QUANTOPS_DATA_DIR": str(self.data_dir)}), user="client")
        nc = await connect_nats(settings, name="quantops-soak", connect_timeout_s=30)
        bus = Bus(nc, service="soak", timeout_s=settings.request_timeout_s)
        bus.caller_token = await asyncio.to_thread(self._bus_token)
        sub = await bus.nc.subscribe("events.task.succeeded.*", cb=self._on_succeeded)
        end = time.monotonic() + self.args.minutes * 60
        loops = [asyncio.create_task(c) for c in (
            self._tasks(bus, end), self._writes(bus, end), self._sweeps(bus, end),
            self._renew(bus, end))]
        try:
            await self._sample(bus, end)
        finally:
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await sub.unsubscribe()
            await bus.nc.close()

    def _bus_token(self) -> str:
        key = (self.data_dir / "gateway" / "admin-api-key").read_text().strip()
        with Client(f"http://127.0.0.1:{self.ports['gateway']}", api_key=key,
                    timeout_s=10) as http:
            grant = http.auth.bus_token()
        self.token_ttl_s = float(grant.expires_in)
        return grant.token

    async def _renew(self, bus: Bus, end: float) -> None:
        """A fresh token at half its life (tokens live minutes, the soak half an hour)."""
        while time.monotonic() < end:
            await asyncio.sleep(max(5.0, self.token_ttl_s / 2))
            try:
                bus.caller_token = await asyncio.to_thread(self._bus_token)
            except (QuantopsError, httpx.HTTPError):
                self._count("token renewal")

    async def _on_succeeded(self, msg: Any) -> None:
        record = json.loads(msg.data)
        if record.get("type") == "noop" and record.get("started_at"):
            self.latencies.append((time.time(), record["started_at"] - record["submitted_at"]))

    async def _steady(self, rate: float, end: float, op: Any) -> None:
        """Call ``op(i)`` ``rate`` times a second on a fixed schedule, never more than 64 open."""
        gate, i, t0 = asyncio.Semaphore(64), 0, time.monotonic()

        async def one(n: int) -> None:
            try:
                await op(n)
            except Exception as e:  # counted and reported: a soak keeps going
                self._count(type(e).__name__)
            finally:
                gate.release()

        while time.monotonic() < end:
            await gate.acquire()
            asyncio.create_task(one(i))  # noqa: RUF006 (the gate bounds them)
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))

    async def _tasks(self, bus: Bus, end: float) -> None:
        client = ExecutorClient(bus)
        await self._steady(self.args.tasks_per_s, end, lambda i: client.submit("noop", {}))

    async def _writes(self, bus: Bus, end: float) -> None:
        state, ttl = StateClient(bus), max(1, int(self.args.retention_s))
        pad = "x" * 200
        await self._steady(self.args.writes_per_s, end, lambda i: state.put(
            "soak", f"k{i}", {"i": i, "pad": pad}, ttl_s=ttl))

    async def _sweeps(self, bus: Bus, end: float) -> None:
        client, registry = ExecutorClient(bus), RegistryClient(bus)
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                reply = await client.submit("sweep", SWEEP)
                await client.wait(reply.task_id, timeout_s=self.args.sweep_every_s * 3)
                # Each deleted version takes its evaluation along (registry companions).
                await registry.cleanup("soak-sweep", keep=3)
            except Exception as e:
                self._count(f"sweep {type(e).__name__}")
            await asyncio.sleep(max(0.0, started + self.args.sweep_every_s - time.monotonic()))

    async def _sample(self, bus: Bus, end: float) -> None:
        client = ExecutorClient(bus)
        start, minute = time.time(), 0
        print(f"{'min':>3} {'tasks':>6} {'p50 ms':>7} {'p99 ms':>7} {'fs ms':>6} "
              f"{'records':>7} {'store MB':>8}  RSS MB by process", flush=True)
        while time.monotonic() < end:
            await asyncio.sleep(max(0.0, start + (minute + 1) * 60 - time.time()))
            lo, hi = start + minute * 60, start + (minute + 1) * 60
            lat = sorted(v for t, v in self.latencies if lo <= t < hi)
            t0 = time.perf_counter()
            await client.failed_summary(window_s=3600)
            fs_ms = (time.perf_counter() - t0) * 1000
            report = jsz(self.ports["monitor"])
            self.last_streams = streams(report)
            assert self.proc is not None
            m = Minute(minute=minute, tasks=len(lat), p50_ms=_pct(lat, 0.5) * 1000,
                       p99_ms=_pct(lat, 0.99) * 1000, failed_summary_ms=fs_ms,
                       records=self.last_streams.get(RECORDS, {}).get("messages", 0),
                       store_bytes=int(report.get("storage", 0)),  # type: ignore[call-overload]
                       rss=process_rss(self.proc.pid))
            self.minutes.append(m)
            rss = " ".join(f"{k}={v / 2**20:.0f}" for k, v in m.rss.items())
            print(f"{m.minute:>3} {m.tasks:>6} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f} {fs_ms:>6.1f} "
                  f"{m.records:>7} {m.store_bytes / 2**20:>8.2f}  {rss}", flush=True)
            minute += 1


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def memory_growth(ms: list[Minute], window_min: int, warmup_min: int) -> dict[str, float]:
    """Per long-lived process: mean RSS of the last ``window_min`` samples over the mean of the
    ``window_min`` after warm-up. Means, not two single samples: a Go process (nats-server)
    holds what its heap peaked at until the scavenger returns it, so one sample can land on a
    peak or a trough (+/-20% in the same steady state); a leak raises the mean all the same."""
    settled, last = ms[warmup_min:warmup_min + window_min], ms[-window_min:]
    names = [k for k in last[-1].rss if not k.startswith("worker")]
    out = {}
    for name in names:
        before = [m.rss[name] for m in settled if m.rss.get(name)]
        after = [m.rss[name] for m in last if m.rss.get(name)]
        if before and after:
            out[name] = statistics.mean(after) / statistics.mean(before) - 1
    return out


def verdict(soak: Soak, window_min: int, warmup_min: int) -> list[str]:
    ms, lines = soak.minutes, []
    first = sorted(v for t, v in soak.latencies if t < soak.latencies[0][0] + window_min * 60)
    last_from = soak.latencies[-1][0] - window_min * 60
    last = sorted(v for t, v in soak.latencies if t >= last_from)
    p99_first, p99_last = _pct(first, 0.99) * 1000, _pct(last, 0.99) * 1000
    ok = p99_last <= 1.5 * p99_first
    lines.append(f"{'PASS' if ok else 'FAIL'}  p99 last {window_min} min {p99_last:.2f} ms vs "
                 f"first {window_min} min {p99_first:.2f} ms (bar: <= 1.5x, is "
                 f"{p99_last / p99_first:.2f}x)")
    growth = memory_growth(ms, window_min, warmup_min)
    worst = max(growth.items(), key=lambda kv: kv[1]) if growth else ("-", 0.0)
    lines.append(f"{'PASS' if worst[1] < 0.10 else 'FAIL'}  memory, mean of the last "
                 f"{window_min} min vs the {window_min} min after warm-up (minute {warmup_min}): "
                 f"worst {worst[0]} {worst[1]:+.1%} (bar: < +10%); "
                 + ", ".join(f"{k} {v:+.1%}" for k, v in sorted(growth.items())))
    settled = [m.store_bytes for m in ms[warmup_min:warmup_min + window_min]]
    final = [m.store_bytes for m in ms[-window_min:]]
    ratio = statistics.mean(final) / statistics.mean(settled) if settled else float("nan")
    mb_final, mb_settled = statistics.mean(final) / 2**20, statistics.mean(settled) / 2**20
    lines.append(f"{'PASS' if ratio <= 1.2 else 'FAIL'}  store bytes: last {window_min} min mean "
                 f"{mb_final:.1f} MB vs {mb_settled:.1f} MB after warm-up (bar: levels off, "
                 f"<= 1.2x; is {ratio:.2f}x)")
    predicted = soak.args.tasks_per_s * soak.args.retention_s
    held = statistics.mean(m.records for m in ms[-window_min:])
    lines.append(f"{'PASS' if abs(held / predicted - 1) < 0.2 else 'FAIL'}  task records: "
                 f"{held:.0f} held vs {predicted:.0f} predicted (noop rate x record TTL; "
                 f"sweep children add a few)")
    if soak.errors:
        lines.append(f"errors during the run: {soak.errors}")
    return lines


def plot(soak: Soak, path: Path) -> Path:
    ms = soak.minutes
    names = [k for k in ms[-1].rss if not k.startswith("worker")]
    return draw(path, [
        Panel("submit to start (ms)", {"p50": [m.p50_ms for m in ms],
                                        "p99": [m.p99_ms for m in ms]}),
        Panel("failed_summary latency (ms)", {"failed_summary": [m.failed_summary_ms
                                                                 for m in ms]}),
        Panel("JetStream store (MB)", {"store": [m.store_bytes / 2**20 for m in ms]}),
        Panel("task records", {"records": [float(m.records) for m in ms]}),
        Panel("RSS (MB)", {n: [m.rss.get(n, 0) / 2**20 for m in ms] for n in names}),
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--tasks-per-s", type=float, default=20.0)
    p.add_argument("--writes-per-s", type=float, default=20.0)
    p.add_argument("--sweep-every-s", type=float, default=60.0)
    p.add_argument("--retention-s", type=float, default=60.0)
    p.add_argument("--nats-memory-mib", type=int, default=64,
                   help="QUANTOPS_NATS_MEMORY_LIMIT for the embedded nats-server, as a "
                        "long-running installation sets it (docs/operations.md, 'Memory'); "
                        "0: Go's default")
    p.add_argument("--png", type=Path, default=ROOT / "bench" / "soak.png")
    args = p.parse_args()
    window = max(1, min(5, args.minutes // 3))
    warmup = max(1, min(5, args.minutes // 3))
    tmp = Path(tempfile.mkdtemp(prefix="quantops-soak-"))
    soak = Soak(args, tmp / "data", {k: free_port() for k in ("nats", "monitor", "gateway")})
    print(f"soak: {args.minutes} min, {args.tasks_per_s} noop tasks/s, {args.writes_per_s} "
          f"state writes/s, a sweep every {args.sweep_every_s:.0f} s, retention "
          f"{args.retention_s:.0f} s, nats-server GOMEMLIMIT "
          f"{f'{args.nats_memory_mib} MiB' if args.nats_memory_mib else 'none'}; data in {tmp}",
          flush=True)
    try:
        soak.start()
        uvloop.run(soak.run())
    finally:
        soak.stop()
    if len(soak.minutes) < 2 or not soak.latencies:
        raise SystemExit("too short to judge")
    print("\nstore by stream at the end (messages, MB):")
    for name, s in sorted(soak.last_streams.items(), key=lambda kv: -kv[1]["bytes"]):
        print(f"  {name:<28} {s['messages']:>8} {s['bytes'] / 2**20:>8.2f}")
    print("\nverdict:")
    for line in verdict(soak, window, warmup):
        print("  " + line)
    print(f"\nplot: {plot(soak, args.png)}")


if __name__ == "__main__":
    main()
