"""The bus's own cost: request/reply through ``shared.bus`` (decode, validate, trace, metrics,
encode) beside a bare nats-py request/reply with the same payload, same server, same run.

    python -m bench.bench_bus [--rounds 5]

Rounds alternate raw and bus, so a load spike from another process on a shared machine hits
both sides alike; each row is the median round, and the ratio is the median of the per-round
ratios (bus round over the raw round just before it).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import nats
import uvloop

from bench.common import Result, median, run_load, start_server, table
from shared.bus import Bus, Context
from shared.contracts.base import Message
from shared.operations import Operation
from shared.roles import Role
from shared.settings import Settings
from shared.telemetry import setup_tracing

#: The bar of issue 18 item 5: the bus at 64 concurrent reaches this share of raw nats-py.
BAR_RATIO = 0.70


class Echo(Message):
    key: str
    n: int


async def timed(name: str, op: Callable[[int], Awaitable[object]], n: int, conc: int,
                cpu_us: list[float]) -> Result:
    """One round; appends this process's CPU per operation (client and server both live here,
    so it is the Python cost of a request/reply, steadier than req/s on a loaded machine)."""
    started = time.process_time()
    result = await run_load(name, op, total=n, concurrency=conc)
    cpu_us.append((time.process_time() - started) / n * 1e6)
    return result


def median_row(rounds: list[Result]) -> Result:
    return sorted(rounds, key=lambda r: r.rate)[len(rounds) // 2]


async def main(rounds: int) -> None:
    server = start_server()
    setup_tracing("bench", Settings.from_env({}).telemetry)
    try:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
        svc = await Bus.connect(settings, service="bench")
        client = await Bus.connect(settings, service="client")

        async def echo(req: Echo, ctx: Context) -> Echo:
            return req

        await svc.serve(Operation("bench.echo", Echo, Echo, Role.VIEWER, "echo"), echo)
        raw_srv = await nats.connect(server.url)
        raw_cli = await nats.connect(server.url)

        async def raw_handler(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await raw_srv.subscribe("bench.raw", queue="raw", cb=raw_handler)
        await raw_srv.flush()
        payload = b'{"key":"positions/AAPL","n":1}'

        async def via_bus(i: int) -> object:
            return await client.request("bench.echo", Echo(key="positions/AAPL", n=i), Echo)

        async def via_raw(i: int) -> object:
            return await raw_cli.request("bench.raw", payload, timeout=5)

        rows: list[Result] = []
        baseline: dict[str, str] = {}
        ratios: dict[int, float] = {}
        cpu: dict[int, tuple[float, float]] = {}
        for conc in (1, 64):
            n = 2000 if conc == 1 else 10000
            await run_load("warm-up", via_bus, total=500, concurrency=conc)
            await run_load("warm-up", via_raw, total=500, concurrency=conc)
            raw_rounds, bus_rounds = [], []
            raw_cpu: list[float] = []
            bus_cpu: list[float] = []
            for _ in range(rounds):
                raw_rounds.append(await timed(f"raw nats-py request/reply  c={conc}", via_raw,
                                              n, conc, raw_cpu))
                bus_rounds.append(await timed(f"shared.bus request/reply   c={conc}", via_bus,
                                              n, conc, bus_cpu))
            cpu[conc] = (median(raw_cpu), median(bus_cpu))
            ratios[conc] = median([b.rate / r.rate for r, b in zip(raw_rounds, bus_rounds,
                                                                     strict=True)])
            raw_row, bus_row = median_row(raw_rounds), median_row(bus_rounds)
            rows += [raw_row, bus_row]
            baseline[bus_row.name] = raw_row.name
        print(f"median round of {rounds}, raw and bus alternating")
        print(table(rows, baseline=baseline))
        for conc, ratio in ratios.items():
            raw_us, bus_us = cpu[conc]
            print(f"c={conc}: median per-round ratio bus/raw {ratio:.0%}; client+server CPU "
                  f"per request/reply raw {raw_us:.1f} us, bus {bus_us:.1f} us "
                  f"(raw/bus {raw_us / bus_us:.0%})")
        print(f"bar: bus >= {BAR_RATIO:.0%} of raw at c=64: "
              f"{'met' if ratios[64] >= BAR_RATIO else 'NOT met'}")
        for c in (svc, client):
            await c.close()
        await raw_srv.close()
        await raw_cli.close()
    finally:
        server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.bench_bus", description=__doc__)
    p.add_argument("--rounds", type=int, default=5)
    uvloop.run(main(p.parse_args().rounds))
