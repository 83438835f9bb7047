"""Helpers of the live-loop tests: a model trained on early real bars, the shipped prices under
per-test symbol names (the BARS stream is shared), and waiting on a strategy's checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pandas as pd
from nats.js import api

from quant.data import load_demo_prices
from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.clients.live import LiveClient
from shared.clients.registry import RegistryClient
from shared.contracts.executor import TaskStatus
from shared.contracts.live import FillEvent, StrategyStatus
from shared.subjects import Stream, live_fill_subject
from tests.support import eventually

SYMBOLS = ["AAPL", "IBM", "MSFT"]
TRAIN = {"symbols": SYMBOLS, "start": "2000-03-01", "end": "2003-12-31",
         "walk_forward": {"n_splits": 2, "min_train_size": 252}}


async def trained_model(bus: Bus, model: str) -> str:
    """A ridge on 2000-2003 of the shipped prices, promoted; its ``@production`` ref."""
    from shared.clients.datasets import DatasetClient

    await DatasetClient(bus).seed_demo()
    executor = ExecutorClient(bus)
    task = await executor.submit("train_model", {**TRAIN, "model_name": model})
    record = await executor.wait(task.task_id, timeout_s=120)
    assert record.status == TaskStatus.SUCCEEDED, record.error
    await RegistryClient(bus).promote(model, 1)
    return f"{model}@production"


def renamed(tag: str, symbols: list[str] = SYMBOLS) -> tuple[pd.DataFrame, dict[str, str]]:
    """The shipped prices of ``symbols`` under names of this test: ``{real: test name}``."""
    names = {s: f"{s}-{tag}" for s in symbols}
    frame = load_demo_prices(symbols)
    return frame.assign(symbol=frame["symbol"].map(names)), names


async def wait_for(bus: Bus, name: str, done: Callable[[StrategyStatus], bool], *,
                   timeout_s: float = 120) -> StrategyStatus:
    """The strategy's status once ``done`` holds (checked on each checkpoint read)."""
    live = LiveClient(bus)
    seen: list[StrategyStatus] = []

    async def met() -> StrategyStatus | None:
        seen.append(status := await live.status(name))
        return status if done(status) else None

    try:
        return await eventually(met, timeout_s=timeout_s, interval_s=0.1,
                                what=f"{name}: the condition on its status")
    except TimeoutError as e:  # the last status says how far it got
        raise TimeoutError(f"{name}: condition not met; last status {seen[-1]}") from e


async def fills(bus: Bus, name: str) -> list[FillEvent]:
    """Every fill event of a strategy, from the EVENTS stream, in order."""
    js = bus.nc.jetstream()
    subject = live_fill_subject(name)
    info = await js.stream_info(Stream.EVENTS, subjects_filter=subject)
    total = (info.state.subjects or {}).get(subject, 0)
    out: list[FillEvent] = []
    sub = await js.subscribe(subject, stream=Stream.EVENTS, ordered_consumer=True,
                             deliver_policy=api.DeliverPolicy.ALL)
    try:
        while len(out) < total:
            msg = await sub.next_msg(timeout=10)
            out.append(msgspec.json.decode(msg.data, type=FillEvent))
    finally:
        await sub.unsubscribe()
    return out


def positions_by_bar(events: list[FillEvent], timestamps: list[str],
                     symbol: str) -> list[float]:
    """A symbol's position at each of ``timestamps``, rebuilt from its fills."""
    changes = {e.timestamp: e.to_position for e in events if e.symbol == symbol}
    out, held = [], 0.0
    for t in timestamps:
        held = changes.get(t, held)
        out.append(held)
    return out
