"""``kill -9`` the executor running a live strategy in the middle of a replay: the runner is
redelivered to the surviving executor, resumes from its checkpoint, and ends with exactly the
positions, fills and P&L of an uninterrupted run (each bar traded once, no fill published
twice)."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import pytest

from quant.estimators import load_model
from quant.recipe import from_hyperparameters
from quant.strategy_engine import StrategyEngine
from quant.streaming_features import BarValues
from services.executor.plugins.quant.live.feeds import ReplaySource, pump
from services.executor.plugins.quant.live.marketdata import ensure_bars_stream
from shared.clients.executor import ExecutorClient
from shared.clients.live import LiveClient
from shared.clients.registry import RegistryClient
from shared.contracts.executor import TaskStatus
from shared.contracts.live import StrategySpec
from tests.integration.executor.plugins.quant.support import QuantSystem
from tests.live import fills, renamed, trained_model, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CAPITAL = 1_000_000.0


def uninterrupted(frame: pd.DataFrame, model: object, recipe_hp: dict, symbols: list[str]  # type: ignore[type-arg]
                  ) -> StrategyEngine:
    recipe = from_hyperparameters(recipe_hp)
    engine = StrategyEngine(symbols=symbols, features=recipe.features, trading=recipe.trading,
                            costs=recipe.costs, kind=recipe.target.kind, capital=CAPITAL)
    for ts, rows in frame.groupby("timestamp", sort=True):
        bars = {r.symbol: BarValues(r.open, r.high, r.low, r.close, r.volume)
                for r in rows.itertuples()}
        engine.step(pd.Timestamp(ts).isoformat(), bars, model)  # type: ignore[arg-type]
    return engine


async def test_a_killed_runner_resumes_to_the_same_book(fast_redelivery: QuantSystem,
                                                        unique: str) -> None:
    bus = await fast_redelivery.bus()
    try:
        model = await trained_model(bus, f"restart-{unique}")
        frame, names = renamed(unique[:8])
        symbols = list(names.values())
        name = f"restart-{unique[:8]}"
        await ensure_bars_stream(bus.nc.jetstream())
        live, executor = LiveClient(bus), ExecutorClient(bus)
        started = await live.start(StrategySpec(name=name, model=model, symbols=symbols,
                                                capital=CAPITAL))
        await pump(ReplaySource(frame), bus.nc.jetstream())
        last = frame["timestamp"].max().isoformat()
        mid = await wait_for(bus, name, lambda s: s.last_timestamp >= "2005-01-01")
        assert mid.last_timestamp < last, "the replay ended before the kill: not a mid-run kill"
        record = await executor.get(started.task_id)
        pid = int(record.worker.rpartition(":")[2])
        victim = next(p for p in fast_redelivery.processes if p.alive() and p.pid == pid)
        victim.stop(signal.SIGKILL)

        status = await wait_for(bus, name, lambda s: s.last_timestamp == last, timeout_s=180)
        again = await executor.get(started.task_id)
        assert again.attempts >= 2 and again.status == TaskStatus.RUNNING, again

        info, data = await RegistryClient(bus).download(model)
        reference = uninterrupted(frame, load_model(data), info.spec.hyperparameters, symbols)
        state = reference.state
        assert state is not None
        assert status.bars == state.bars == len(frame)
        assert status.equity == pytest.approx(state.book.equity, rel=0, abs=1e-6)
        assert abs(status.equity / CAPITAL - state.book.equity / CAPITAL) <= 1e-9
        for view in status.positions:
            assert view.position == state.book.positions[view.symbol]
            assert view.quantity == pytest.approx(state.book.quantities[view.symbol], rel=1e-12)
        assert status.orders == state.orders and status.fees == pytest.approx(state.book.fees)
        events = await fills(bus, name)
        keys = [(e.timestamp, e.symbol) for e in events]
        assert len(keys) == len(set(keys)) == state.book.fills, "a bar's fill published twice"
        assert np.isclose(sum(e.cost for e in events), state.book.fees, rtol=1e-12)
        await live.stop(name)
    finally:
        await bus.close()
