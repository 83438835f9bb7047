"""Market data on a real nats-server: a re-sent bar is dropped by JetStream itself (same symbol
and timestamp), bars land on per-symbol subjects, and the CSV follower turns a growing file
into bars without reading half-written lines."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from quant.data import load_demo_prices
from services.executor.plugins.quant.live.feeds import CsvFollower, ReplaySource, pump
from services.executor.plugins.quant.live.marketdata import (
    PublishStats,
    ensure_bars_stream,
    publish_bar,
)
from shared.bus import Bus
from shared.contracts.quant import Bar
from shared.subjects import Stream, bar_subject

pytestmark = pytest.mark.timeout(60)


def bar(symbol: str, day: int, close: float = 10.0) -> Bar:
    return Bar(timestamp=datetime(2020, 1, day), open=close, high=close + 1, low=close - 1,
               close=close, volume=1000.0, symbol=symbol)


async def test_a_resent_bar_is_dropped_by_jetstream(bus: Bus, unique: str) -> None:
    js = bus.nc.jetstream()
    await ensure_bars_stream(js)
    symbol = f"DUP{unique[:8]}"
    stats = PublishStats()
    assert await publish_bar(js, bar(symbol, 2), stats)
    assert not await publish_bar(js, bar(symbol, 2, close=99.0), stats)  # same id: dropped
    assert await publish_bar(js, bar(symbol, 3), stats)
    assert (stats.published, stats.duplicates) == (3, 1)
    info = await js.stream_info(Stream.BARS, subjects_filter=bar_subject(symbol))
    assert (info.state.subjects or {})[bar_subject(symbol)] == 2


async def test_replay_publishes_in_time_order_at_speed(bus: Bus, unique: str) -> None:
    js = bus.nc.jetstream()
    await ensure_bars_stream(js)
    frame = load_demo_prices(["IBM", "MSFT"]).head(3).assign(symbol=f"R{unique[:8]}")
    frame = frame.assign(timestamp=frame["timestamp"].sort_values().to_numpy())
    started = asyncio.get_running_loop().time()
    stats = await pump(ReplaySource(frame, speed=86400 * 10), js)  # 10 daily bars a second
    elapsed = asyncio.get_running_loop().time() - started
    assert stats.published == 3 and stats.duplicates == 0
    days = (frame["timestamp"].max() - frame["timestamp"].min()).days
    assert elapsed >= days / 10 * 0.9


async def test_csv_follower_reads_complete_lines_as_the_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    stop = asyncio.Event()
    follower = CsvFollower(path, poll_s=0.01, stop=stop)
    arrived: asyncio.Queue[Bar] = asyncio.Queue()

    async def follow() -> None:
        async for b in follower.bars():
            arrived.put_nowait(b)

    task = asyncio.create_task(follow())
    path.write_text("Date,Ticker,Open,High,Low,Close,Volume\n2020-01-02,AAA,1,2,0.5,1.5,100\n"
                    "2020-01-03,AAA,1.5,2")  # the second line is still being written
    seen = [await asyncio.wait_for(arrived.get(), 5)]
    assert arrived.empty()  # the half-written line is not a bar yet
    with path.open("a") as handle:
        handle.write(",1,1.8,200\n2020-01-06,AAA,1.8,2,1.7,1.9,300\n")
    seen += [await asyncio.wait_for(arrived.get(), 5) for _ in range(2)]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [(b.symbol, b.timestamp.day, b.close, b.volume) for b in seen] == [
        ("AAA", 2, 1.5, 100.0), ("AAA", 3, 1.8, 200.0), ("AAA", 6, 1.9, 300.0)]
