"""Where bars come from: a small adapter interface, a replay of a stored dataset, and a real
feed that needs no internet (a CSV file another program keeps appending to).

An adapter is anything with ``async def bars() -> AsyncIterator[Bar]``; ``pump`` publishes what
it yields to the market-data stream. The replay feeder turns a dataset into a live feed at a
chosen speed: ``speed`` bar-time seconds per wall-clock second (86400: a daily bar each second;
``0``: as fast as JetStream acknowledges), which is what the offline demo and the tests use.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
from nats.js import JetStreamContext

from quant.data import normalise_ohlcv
from services.executor.plugins.quant.live.marketdata import PublishStats, publish_bar
from shared.contracts.quant import Bar


class BarSource(Protocol):
    """A feed adapter: yields bars as they become known, in the order it learns them."""

    def bars(self) -> AsyncIterator[Bar]: ...


def frame_bars(frame: pd.DataFrame) -> list[Bar]:
    """A normalised OHLCV frame as bars in time order (symbols interleaved per timestamp)."""
    ordered = frame.sort_values(["timestamp", "symbol"], kind="mergesort")
    return [Bar(timestamp=pd.Timestamp(r.timestamp).to_pydatetime(), open=float(r.open),
                high=float(r.high), low=float(r.low), close=float(r.close),
                volume=float(r.volume), symbol=str(r.symbol))
            for r in ordered.itertuples(index=False)]


@dataclass
class ReplaySource:
    """A stored dataset replayed as a live feed.

    Args:
        frame: normalised OHLCV (``quant.data``).
        speed: bar-time seconds per wall-clock second; 0 replays as fast as possible.
    """

    frame: pd.DataFrame
    speed: float = 0.0

    async def bars(self) -> AsyncIterator[Bar]:
        previous = None
        for bar in frame_bars(self.frame):
            if self.speed > 0 and previous is not None and bar.timestamp > previous:
                await asyncio.sleep((bar.timestamp - previous).total_seconds() / self.speed)
            previous = bar.timestamp
            yield bar


@dataclass
class CsvFollower:
    """Follows a CSV file that grows (``tail -f``): each complete new line is a bar.

    The header names the columns (the aliases ``quant.data`` accepts: ``Date``,
    ``Ticker``, ``Adj Close``...). A half-written last line waits for its newline.

    Args:
        path: the file; it may not exist yet.
        poll_s: how often to look for new lines.
        stop: set it to end the iteration after the lines already written.
    """

    path: Path
    poll_s: float = 0.2
    stop: asyncio.Event | None = None

    async def bars(self) -> AsyncIterator[Bar]:
        header: list[str] | None = None
        offset = 0
        while True:
            chunk = await asyncio.to_thread(self._read_from, offset)
            complete = chunk[:chunk.rfind(b"\n") + 1]
            offset += len(complete)
            lines = complete.decode("utf-8").splitlines()
            if header is None and lines:
                header, lines = next(csv.reader([lines[0]])), lines[1:]
            if header is not None and lines:
                for bar in _parse(header, lines):
                    yield bar
            if not complete:
                if self.stop is not None and self.stop.is_set():
                    return
                await asyncio.sleep(self.poll_s)

    def _read_from(self, offset: int) -> bytes:
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                return handle.read()
        except FileNotFoundError:
            return b""


def _parse(header: list[str], lines: list[str]) -> list[Bar]:
    text = ",".join(header) + "\n" + "\n".join(lines) + "\n"
    frame = normalise_ohlcv(pd.read_csv(io.StringIO(text)))
    return frame_bars(frame.dropna(subset=["open", "high", "low", "close", "volume"]))


async def pump(source: BarSource, js: JetStreamContext) -> PublishStats:
    """Publish every bar ``source`` yields; the counts of published and duplicate bars."""
    stats = PublishStats()
    async for bar in source.bars():
        await publish_bar(js, bar, stats)
    return stats
