"""The live loop: bar-to-fill latency for one symbol and sustained bars per second with 50
symbols, beside a bare NATS request/reply round trip in the same run.

    python -m bench.bench_live [--bars 400] [--timestamps 400]

Setup: a private nats-server, real ``state``, ``registry`` and one ``executor`` process; a ridge
trained on the real demo prices and promoted; strategies started with ``executor.live.start``.

- Latency, one symbol: bars of the real AAPL series are published one at a time (after a
  warm-up history); each bar is timed from its publish to its checkpoint (the state service's
  change feed of the strategy's book: the runner has scored, limited, filled, published its
  fills and persisted the book), and, for the bars that traded, to the fill event.
- Throughput, 50 symbols: the real AAPL, IBM and MSFT series under 50 names (they share dates,
  so every timestamp is complete), published as fast as JetStream acknowledges; timed from the
  first publish to the checkpoint of the last timestamp.
- Baseline: a bare nats-py request/reply echo on the same server, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import nats
import uvloop

from bench.bench_quant import DATA, Stack
from bench.common import Result, run_load, table
from quant.data import load_demo_prices
from services.executor.plugins.quant.live.feeds import ReplaySource, frame_bars, pump
from services.executor.plugins.quant.live.marketdata import ensure_bars_stream, publish_bar
from shared.bus import Bus, flush
from shared.clients.executor import ExecutorClient
from shared.clients.live import LiveClient
from shared.clients.registry import RegistryClient
from shared.contracts.live import FillEvent, StrategySpec
from shared.subjects import STATE_CHANGES_PREFIX, live_fill_subject

WARMUP_BARS = 300
MODEL = "bench-live"


async def model(bus: Bus) -> str:
    executor = ExecutorClient(bus)
    task = await executor.submit("train_model", {**DATA, "model_name": MODEL})
    done = await executor.wait(task.task_id, timeout_s=300)
    assert done.status == "succeeded", done.error
    await RegistryClient(bus).promote(MODEL, 1)
    return f"{MODEL}@production"


def book_changes(name: str) -> str:
    return f"{STATE_CHANGES_PREFIX}.live.{name}.book"


async def latency(bus: Bus, ref: str, n: int) -> list[Result]:
    name, symbol = "bench-latency", "LATENCY"
    frame = load_demo_prices(["AAPL"]).assign(symbol=symbol)
    bars = frame_bars(frame)
    js = bus.nc.jetstream()
    await pump(ReplaySource(frame.head(WARMUP_BARS)), js)
    checkpoints: asyncio.Queue[float] = asyncio.Queue()
    fills: dict[str, float] = {}

    async def on_checkpoint(msg: nats.aio.msg.Msg) -> None:
        checkpoints.put_nowait(time.perf_counter())

    async def on_fill(msg: nats.aio.msg.Msg) -> None:
        fills[msgspec.json.decode(msg.data, type=FillEvent).timestamp] = time.perf_counter()

    subs = [await bus.nc.subscribe(book_changes(name), cb=on_checkpoint),
            await bus.nc.subscribe(live_fill_subject(name), cb=on_fill)]
    await flush(bus.nc)
    await LiveClient(bus).start(StrategySpec(name=name, model=ref, symbols=[symbol]))
    for _ in range(WARMUP_BARS):  # the runner catches up with the warm-up history
        await asyncio.wait_for(checkpoints.get(), 60)
    to_checkpoint, to_fill = [], []
    started = time.perf_counter()
    for bar in bars[WARMUP_BARS:WARMUP_BARS + n]:
        sent = time.perf_counter()
        await publish_bar(js, bar)
        done = await asyncio.wait_for(checkpoints.get(), 30)
        to_checkpoint.append(done - sent)
        filled = fills.get(bar.timestamp.isoformat())
        if filled is not None:
            to_fill.append(filled - sent)
    took = time.perf_counter() - started
    for sub in subs:
        await sub.unsubscribe()
    await LiveClient(bus).stop(name)
    return [Result(f"bar -> fill, 1 symbol ({len(to_fill)} traded)", len(to_fill),
                   took * len(to_fill) / n, to_fill),
            Result("bar -> checkpoint, 1 symbol (every bar)", n, took, to_checkpoint)]


async def throughput(bus: Bus, ref: str, timestamps: int, symbols: int = 50) -> Result:
    name = "bench-throughput"
    real = load_demo_prices(["AAPL", "IBM", "MSFT"])
    dates = sorted(real["timestamp"].unique())[:timestamps]
    real = real[real["timestamp"].isin(dates)]
    parts = [real[real["symbol"] == ["AAPL", "IBM", "MSFT"][i % 3]].assign(symbol=f"S{i:02d}")
             for i in range(symbols)]
    import pandas as pd

    frame = pd.concat(parts, ignore_index=True)
    done = asyncio.Event()
    seen = [0]

    async def on_checkpoint(msg: nats.aio.msg.Msg) -> None:
        seen[0] += 1
        if seen[0] == timestamps:
            done.set()

    sub = await bus.nc.subscribe(book_changes(name), cb=on_checkpoint)
    await flush(bus.nc)
    await LiveClient(bus).start(StrategySpec(
        name=name, model=ref, symbols=sorted(frame["symbol"].unique().tolist())))
    started = time.perf_counter()
    await pump(ReplaySource(frame), bus.nc.jetstream())
    published = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), 600)
    took = time.perf_counter() - started
    await sub.unsubscribe()
    await LiveClient(bus).stop(name)
    print(f"  50 symbols: {len(frame)} bars published in {published:.2f} s "
          f"({len(frame) / published:,.0f} bars/s), all traded after {took:.2f} s")
    return Result(f"{symbols} symbols sustained (ops = bars)", len(frame), took, [])


async def baseline(url: str, n: int) -> Result:
    server, client = await nats.connect(url), await nats.connect(url)

    async def respond(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(msg.data)

    await server.subscribe("bench.echo", cb=respond)
    await flush(server)
    payload = b'{"symbol":"AAPL","close":100.0}'

    async def echo(i: int) -> object:
        return await client.request("bench.echo", payload, timeout=5)

    await run_load("warm-up", echo, total=200, concurrency=1)
    result = await run_load("bare nats-py request/reply (echo)", echo, total=n, concurrency=1)
    await client.close()
    await server.close()
    return result


async def main(bars: int, timestamps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quantops-bench-") as tmp:
        stack = Stack(Path(tmp))
        bus = await stack.up()
        try:
            stack.start("executor", QUANTOPS_LOG_LEVEL="WARNING")
            from tests.support import wait_healthy

            await wait_healthy(stack.nats.url, "executor", timeout_s=60)
            await ensure_bars_stream(bus.nc.jetstream())
            ref = await model(bus)
            rows = [await baseline(stack.nats.url, 2000)]
            rows += await latency(bus, ref, bars)
            rows.append(await throughput(bus, ref, timestamps))
            print(table(rows, baseline={rows[1].name: rows[0].name,
                                        rows[2].name: rows[0].name}))
            print("(ops/s of the latency rows is sequential: one bar in flight at a time)")
        finally:
            await bus.close()
            stack.down()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=400)
    parser.add_argument("--timestamps", type=int, default=400)
    args = parser.parse_args()
    uvloop.run(main(args.bars, args.timestamps))
    sys.exit(0)
