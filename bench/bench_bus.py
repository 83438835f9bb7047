"""The bus's own cost: request/reply through ``shared.bus`` (decode, validate, trace, metrics,
encode) beside a bare nats-py request/reply with the same payload, same server, same run.

Two bus rows: on an open bus (no bus key: the correlation id is the only header), which the
bar of issue 18 was first measured on, and with a bus key as services are deployed (every
request also carries the principal and a signed token, verified by the server).

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
from shared.bus import Bus, Context, flush
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


async def alternate(sides: dict[str, tuple[str, Callable[[int], Awaitable[object]]]],
                    conc: int, rounds: int) -> tuple[dict[str, list[Result]],
                                                     dict[str, list[float]]]:
    """``rounds`` rounds of every side in turn; each side's results and CPU per request."""
    n = 2000 if conc == 1 else 10000
    for _, op in sides.values():
        await run_load("warm-up", op, total=500, concurrency=conc)
    found: dict[str, list[Result]] = {side: [] for side in sides}
    spent: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side, (label, op) in sides.items():
            found[side].append(await timed(f"{label} c={conc}", op, n, conc, spent[side]))
    return found, spent


async def main(rounds: int) -> None:
    server = start_server()
    setup_tracing("bench", Settings.from_env({}).telemetry)
    try:
        settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
        keyed = Settings.from_env({"QUANTOPS_NATS_URL": server.url,
                                   "QUANTOPS_BUS_KEY": "bench-bus-key-" + "k" * 32})
        svc = await Bus.connect(settings, service="bench")
        client = await Bus.connect(settings, service="client")
        keyed_svc = await Bus.connect(keyed, service="bench")
        keyed_client = await Bus.connect(keyed, service="client")

        async def echo(req: Echo, ctx: Context) -> Echo:
            return req

        await svc.serve(Operation("bench.echo", Echo, Echo, Role.VIEWER, "echo"), echo)
        await keyed_svc.serve(Operation("bench.echo.keyed", Echo, Echo, Role.VIEWER, "echo"),
                              echo)
        raw_srv = await nats.connect(server.url)
        raw_cli = await nats.connect(server.url)

        async def raw_handler(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await raw_srv.subscribe("bench.raw", queue="raw", cb=raw_handler)
        await flush(raw_srv)  # nats-py's flush can return before the server has the SUB
        payload = b'{"key":"positions/AAPL","n":1}'

        async def via_bus(i: int) -> object:
            return await client.request("bench.echo", Echo(key="positions/AAPL", n=i), Echo)

        async def via_keyed(i: int) -> object:
            return await keyed_client.request("bench.echo.keyed", Echo(key="positions/AAPL", n=i),
                                              Echo)

        async def via_raw(i: int) -> object:
            return await raw_cli.request("bench.raw", payload, timeout=5)

        rows: list[Result] = []
        baseline: dict[str, str] = {}
        ratios: dict[tuple[str, int], float] = {}
        cpu: dict[tuple[str, int], float] = {}
        sides = {"raw": ("raw nats-py request/reply ", via_raw),
                 "bus": ("shared.bus, open bus      ", via_bus),
                 "keyed": ("shared.bus, with bus key  ", via_keyed)}
        for conc in (1, 64):
            found, spent = await alternate(sides, conc, rounds)
            for side in sides:
                cpu[side, conc] = median(spent[side])
                ratios[side, conc] = median([b.rate / r.rate for r, b in zip(
                    found["raw"], found[side], strict=True)])
                rows.append(median_row(found[side]))
                baseline[rows[-1].name] = median_row(found["raw"]).name
            del baseline[median_row(found["raw"]).name]
        print(f"median round of {rounds}, raw and bus alternating")
        print(table(rows, baseline=baseline))
        for conc in (1, 64):
            raw_us = cpu["raw", conc]
            for side in ("bus", "keyed"):
                print(f"c={conc} {side:>5}: median per-round ratio bus/raw "
                      f"{ratios[side, conc]:.0%}; client+server CPU per request/reply raw "
                      f"{raw_us:.1f} us, bus {cpu[side, conc]:.1f} us "
                      f"(raw/bus {raw_us / cpu[side, conc]:.0%})")
        print(f"bar: bus >= {BAR_RATIO:.0%} of raw at c=64: open bus "
              f"{'met' if ratios['bus', 64] >= BAR_RATIO else 'NOT met'}, with bus key "
              f"{'met' if ratios['keyed', 64] >= BAR_RATIO else 'NOT met'}")
        for c in (svc, client, keyed_svc, keyed_client):
            await c.close()
        await raw_srv.close()
        await raw_cli.close()
    finally:
        server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench.bench_bus", description=__doc__)
    p.add_argument("--rounds", type=int, default=5)
    uvloop.run(main(p.parse_args().rounds))
