"""The strategy engine, bar by bar, trades exactly what the backtest trades on the same bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant.backtest import backtest_predictions
from quant.data import load_demo_prices
from quant.estimators import Model, build_model
from quant.features import compute_features, feature_columns
from quant.recipe import Recipe
from quant.risk_limits import RiskLimits
from quant.specs import CostSpec, EstimatorSpec, TradingSpec
from quant.strategy_engine import Step, StrategyEngine
from quant.streaming_features import BarValues
from services.executor.plugins.quant.tasks.jobs import model_predictions

SYMBOLS = ["AAPL", "IBM", "MSFT"]
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    # Six years keep this quick; tests/e2e/test_live_replay.py replays the whole history.
    prices = load_demo_prices(SYMBOLS)
    return prices[prices["timestamp"] < "2006-03-01"].reset_index(drop=True)


def fitted(frame: pd.DataFrame, recipe: Recipe, kind: str = "regression") -> Model:
    train = frame[frame["timestamp"] < "2004-01-01"]
    feats = compute_features(train, recipe.features)
    names = feature_columns(recipe.features)
    nxt = np.log(train.groupby("symbol")["close"].shift(-1) / train["close"]).to_numpy()
    ok = np.isfinite(feats[names].to_numpy()).all(axis=1) & np.isfinite(nxt)
    y = nxt[ok] if kind == "regression" else (nxt[ok] > 0).astype(float)
    return build_model(recipe.estimators, kind).fit(feats[names].to_numpy()[ok], y)  # type: ignore[arg-type]


def replay(frame: pd.DataFrame, engine: StrategyEngine, model: Model) -> list[Step]:
    steps = []
    for ts, rows in frame.groupby("timestamp", sort=True):
        bars = {r.symbol: BarValues(r.open, r.high, r.low, r.close, r.volume)
                for r in rows.itertuples()}
        steps.append(engine.step(pd.Timestamp(ts).isoformat(), bars, model))
    return steps


@pytest.mark.parametrize(("kind", "trading", "estimator"), [
    ("regression", TradingSpec(), "ridge"),
    ("direction", TradingSpec(mode="long_flat", threshold=0.02), "logistic_regression"),
    ("regression", TradingSpec(fill="next_open"), "ridge"),
], ids=["close", "direction-long-flat", "next-open"])
def test_live_steps_equal_the_backtest(frame: pd.DataFrame, kind: str, trading: TradingSpec,
                                       estimator: str) -> None:
    recipe = Recipe(estimators=[EstimatorSpec(name=estimator)], trading=trading,
                    costs=CostSpec(bps=5.0))
    model = fitted(frame, recipe, kind)
    engine = StrategyEngine(symbols=SYMBOLS, features=recipe.features, trading=trading,
                            costs=recipe.costs, kind=kind)  # type: ignore[arg-type]
    steps = replay(frame, engine, model)
    backtest = backtest_predictions(frame, model_predictions(frame, model, recipe), kind=kind,  # type: ignore[arg-type]
                                    trading=trading, costs=recipe.costs)
    by_time = {s.timestamp: s for s in steps}
    times = [t for t, _ in backtest.equity]
    # The backtest's equity at t is the period its decision at t is held: the live book marked
    # at the next bar's close, or (next_open) at the open of the bar after the filling one.
    marked = [s.equity for s in steps]
    lag = 2 if trading.fill == "next_open" else 1
    offset = [s.timestamp for s in steps].index(times[0]) + lag
    live_equity = np.array(marked[offset:offset + len(times)])
    np.testing.assert_allclose(live_equity, [v for _, v in backtest.equity], rtol=0,
                               atol=TOLERANCE)
    for symbol in SYMBOLS:
        live_positions = [by_time[t].targets.get(symbol, 0.0) for t in times]
        assert live_positions == backtest.positions[symbol]
    # The last bar trades too, live; the backtest has no next return for it and leaves it out.
    stamps = [s.timestamp for s in steps]
    filled_at = [stamps[stamps.index(t) + lag - 1] for t in times]
    assert sum(len(by_time[t].fills) for t in filled_at) == backtest.metrics.n_trades
    fees = sum(f.cost for s in steps for f in s.fills)
    assert fees > 0 and engine.state is not None and engine.state.book.fees == fees


def test_a_drawdown_limit_trips_the_kill_switch_and_flattens(frame: pd.DataFrame) -> None:
    recipe = Recipe()
    model = fitted(frame, recipe)
    engine = StrategyEngine(symbols=SYMBOLS, features=recipe.features, trading=recipe.trading,
                            costs=recipe.costs, kind="regression",
                            limits=RiskLimits(max_drawdown=0.05, max_position=0.5))
    steps = replay(frame.head(3 * 600), engine, model)
    assert engine.state is not None and engine.state.killed
    kill = next(i for i, s in enumerate(steps) if any(b.kill for b in s.breaches))
    assert all(v == 0.0 for v in steps[kill].targets.values())
    assert all(not s.fills for s in steps[kill + 1:])
    assert max(abs(p) for s in steps for p in s.targets.values()) == 0.5
