"""The gateway's own cost: an authenticated ``GET /v1/state/{ns}/{key}`` through the gateway
beside a direct nats-py request to the state service for the same key, same run, same
concurrency (64), so what the gateway adds (HTTP, authentication, routing, the NATS hop's
encoding) is visible.

    python -m bench.bench_gateway [--seconds 8] [--rounds 2] [--connections 64]

Starts its own nats-server, state service and gateway (rate limits off). HTTP load comes from
``wrk`` (Debian package; installed when missing and this runs as root), else from an in-process
httpx loop, which is slower than the gateway and so measures itself. Bar: >= 4,000 req/s with
p99 < 30 ms on a 2-core machine with the load tool on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import uvloop

from bench.common import CpuMeter, median, start_server
from shared.natsserver import free_port

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE, KEY = "bench", "positions/AAPL"
VALUE = b'{"value": {"qty": 100, "avg_price": 187.32, "updated_by": "bench"}}'
BAR_RPS, BAR_P99_MS = 4000.0, 30.0
BAR_RATIO = 0.50


@dataclass(frozen=True)
class Row:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float


def service(name: str, nats_url: str, data_dir: Path, **env: str) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTOPS_", "OTEL_"))}
    base |= {"QUANTOPS_NATS_URL": nats_url, "QUANTOPS_DATA_DIR": str(data_dir),
             "QUANTOPS_METRICS_PORT": "0", "QUANTOPS_LOG_LEVEL": "WARNING",
             "PYTHONPATH": str(ROOT), **env}
    log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
    return subprocess.Popen([sys.executable, "-m", "cli.main", "serve", name], env=base,
                            stdout=log, stderr=log, cwd=ROOT)


@contextlib.contextmanager
def system(nats_url: str, data_dir: Path) -> Iterator[tuple[str, CpuMeter]]:
    """The state service and a gateway with rate limits off; yields the gateway's URL and a
    meter of both processes' CPU."""
    port = free_port()
    procs = [service("state", nats_url, data_dir),
             service("gateway", nats_url, data_dir, QUANTOPS_GATEWAY_PORT=str(port),
                     QUANTOPS_GATEWAY_RATE_LIMIT_PER_S="0")]
    try:
        yield f"http://127.0.0.1:{port}", CpuMeter({"state": [procs[0].pid],
                                                    "gateway": [procs[1].pid]})
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


def wait_ready(url: str, key_file: Path, timeout_s: float = 60.0) -> str:
    """The admin key, once the gateway answers and a state write goes through."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError, OSError):
            key = key_file.read_text().strip()
            r = httpx.put(f"{url}/v1/state/{NAMESPACE}/{KEY}", content=VALUE, timeout=5,
                          headers={"Authorization": f"Bearer {key}",
                                   "Content-Type": "application/json"})
            if r.status_code in (200, 201):
                return key
        time.sleep(0.2)
    raise TimeoutError("gateway or state service not ready")


async def direct(nats_url: str, seconds: float, concurrency: int) -> Row:
    """nats-py request/reply to ``state.kv.get``: what the gateway wraps."""
    nc = await nats.connect(nats_url)
    payload = b'{"namespace": "%s", "key": "%s"}' % (NAMESPACE.encode(), KEY.encode())
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await nc.request("state.kv.get", payload, timeout=5)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await nc.close()
    return _row(f"direct nats-py state.kv.get   c={concurrency}", latencies, elapsed)


def _row(name: str, latencies: list[float], elapsed: float) -> Row:
    lat = sorted(latencies)
    return Row(name, len(lat) / elapsed, lat[len(lat) // 2] * 1000,
               lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000)


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True,
                   timeout=600, check=False, env={**os.environ,
                                                   "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("wrk")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def via_wrk(wrk: str, url: str, key: str, seconds: float, connections: int) -> Row:
    out = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
         "-H", f"Authorization: Bearer {key}", f"{url}/v1/state/{NAMESPACE}/{KEY}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    pct = {p: float(v) * _UNITS[u] for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors[1]} failed responses:\n{out}")
    return Row(f"gateway GET /v1/state/{{ns}}/{{key}} c={connections}", rps, pct["50"],
               pct["99"])


async def via_httpx(url: str, key: str, seconds: float, connections: int) -> Row:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10,
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        async def worker() -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                (await http.get(f"/v1/state/{NAMESPACE}/{KEY}")).raise_for_status()
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return _row(f"gateway (httpx load) c={connections}", latencies, elapsed)


def print_rows(rows: list[Row]) -> None:
    print(f"{'operation':<46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r.name:<46} {r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}")


async def measure(args: argparse.Namespace, nats_url: str, url: str, key: str,
                  meter: CpuMeter) -> tuple[list[Row], list[float]]:
    """Alternating rounds; also the gateway process's CPU per HTTP request, each round (a
    figure that, unlike req/s, hardly moves when other work shares the cores)."""
    wrk = ensure_wrk()
    rows: list[Row] = []
    gateway_cpu_us: list[float] = []
    await direct(nats_url, 1.0, args.connections)  # warm-up: caches, connections, JIT-free
    for _ in range(args.rounds):
        rows.append(await direct(nats_url, args.seconds, args.connections))
        before = meter.snapshot()
        if wrk:
            rows.append(await asyncio.to_thread(via_wrk, wrk, url, key, args.seconds,
                                                args.connections))
        else:
            rows.append(await via_httpx(url, key, args.seconds, args.connections))
        requests = rows[-1].rps * args.seconds
        gateway_cpu_us.append(meter.per_op_us(before, meter.snapshot(), int(requests))["gateway"])
    return rows, gateway_cpu_us


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bench_gateway", description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating rounds; the median per-round ratio counts")
    p.add_argument("--connections", type=int, default=64)
    args = p.parse_args()
    server = start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="quantops-bench-gw-") as tmp, \
                system(server.url, Path(tmp)) as (url, meter):
            key = wait_ready(url, Path(tmp) / "gateway" / "admin-api-key")
            rows, gateway_cpu_us = uvloop.run(measure(args, server.url, url, key, meter))
    finally:
        server.stop()
    print_rows(rows)
    best_direct = max((r for r in rows if r.name.startswith("direct")), key=lambda r: r.rps)
    best = max((r for r in rows if r.name.startswith("gateway")), key=lambda r: r.rps)
    ok = best.rps >= BAR_RPS and best.p99_ms < BAR_P99_MS
    print(f"\nbest gateway round: {best.rps:,.0f} req/s, p99 {best.p99_ms:.1f} ms "
          f"({best.rps / best_direct.rps:.0%} of direct NATS); bar >= {BAR_RPS:,.0f} req/s "
          f"and p99 < {BAR_P99_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    pairs = zip(rows[::2], rows[1::2], strict=True)
    ratio = median([gw.rps / d.rps for d, gw in pairs])
    print(f"median per-round ratio gateway/direct NATS: {ratio:.0%} (bar of issue 18: >= "
          f"{BAR_RATIO:.0%}: {'met' if ratio >= BAR_RATIO else 'NOT met'}); gateway process "
          f"CPU per request, median round: {median(gateway_cpu_us):.0f} us")


if __name__ == "__main__":
    main()
