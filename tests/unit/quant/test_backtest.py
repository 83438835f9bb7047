"""Backtests: hand-computed equity, rule strategies without look-ahead, downsampling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from quant.backtest import (
    backtest_positions,
    backtest_predictions,
    downsample,
    ma_crossover,
    momentum,
    run_strategy,
)
from quant.data import load_demo_prices
from quant.specs import CostSpec, TradingSpec


def prices(closes: list[float], symbol: str = "A") -> pd.DataFrame:
    close = np.array(closes)
    return pd.DataFrame(
        {
            "timestamp": pd.bdate_range("2024-01-01", periods=len(close)),
            "symbol": symbol,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
        }
    )


def test_backtest_positions_by_hand() -> None:
    frame = prices([100, 110, 99, 99, 108.9])
    positions = frame[["timestamp", "symbol"]].assign(position=[1.0, -1.0, 0.0, 1.0, 1.0])
    result = backtest_positions(frame, positions, costs=CostSpec(bps=0))
    # next returns 0.1, -0.1, 0, 0.1; the last bar has none and is not traded
    assert [v for _, v in result.equity] == pytest.approx([1.1, 1.21, 1.21, 1.331])
    assert result.equity[0][0] == "2024-01-01T00:00:00"
    assert result.metrics.n_periods == 4
    assert result.metrics.total_return == pytest.approx(0.331)
    assert result.symbols == ["A"]


def test_backtest_predictions_uses_trading_spec() -> None:
    frame = prices([100, 110, 99, 99, 108.9])
    predictions = frame[["timestamp", "symbol"]].assign(prediction=[0.8, 0.3, 0.5, 0.7, 0.9])
    long_flat = backtest_predictions(
        frame,
        predictions,
        kind="direction",
        trading=TradingSpec(mode="long_flat"),
        costs=CostSpec(bps=0),
    )
    # long, flat, flat, long: earns 0.1 and 0.1
    assert long_flat.metrics.total_return == pytest.approx(1.1 * 1.1 - 1)
    assert long_flat.metrics.n_trades == 3


def test_ma_crossover_and_momentum_by_hand() -> None:
    frame = prices([1, 2, 3, 4, 3, 2, 1])
    cross = ma_crossover(frame, fast=1, slow=3)
    # fast = close; slow = 3-bar mean: flat until bar 2, then sign(close - mean)
    assert cross["position"].tolist() == [0.0, 0.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    mom = momentum(frame, lookback=2, mode="long_flat")
    assert mom["position"].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="fast < slow"):
        ma_crossover(frame, fast=5, slow=3)


STRATEGIES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "ma_crossover": lambda frame: ma_crossover(frame, fast=10, slow=30),
    "momentum": lambda frame: momentum(frame, lookback=20),
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_rule_strategies_have_no_look_ahead(strategy: str) -> None:
    frame = load_demo_prices(["MSFT"]).iloc[:400]
    base = STRATEGIES[strategy](frame)
    cut = 250
    mutated = frame.copy()
    mutated.loc[cut + 1 :, "close"] = mutated.loc[cut + 1 :, "close"][::-1].to_numpy()
    changed = STRATEGIES[strategy](mutated)
    assert base["position"].iloc[: cut + 1].tolist() == changed["position"].iloc[: cut + 1].tolist()
    assert base["position"].iloc[cut + 1 :].tolist() != changed["position"].iloc[cut + 1 :].tolist()


def test_run_strategy_on_demo_data() -> None:
    frame = load_demo_prices(["AAPL", "IBM"])
    result = run_strategy(frame, "ma_crossover", {"fast": 20, "slow": 50})
    assert result.symbols == ["AAPL", "IBM"]
    assert result.metrics.n_periods == 3269
    assert 0 < result.metrics.max_drawdown < 1
    points = result.equity_points(100)
    assert len(points) == 100
    assert points[0] == result.equity[0] and points[-1] == result.equity[-1]
    with pytest.raises(ValueError, match="unknown strategy"):
        run_strategy(frame, "buy_the_dip")
    with pytest.raises(ValueError, match="bad parameters"):
        run_strategy(frame, "momentum", {"window": 3})


def test_downsample() -> None:
    points = [(str(i), float(i)) for i in range(10)]
    assert downsample(points, 20) == points
    thin = downsample(points, 4)
    assert [p[0] for p in thin] == ["0", "3", "6", "9"]
    with pytest.raises(ValueError):
        downsample(points, 1)


def test_misaligned_positions_are_rejected() -> None:
    frame = prices([1, 2, 3])
    positions = pd.DataFrame(
        {"timestamp": pd.to_datetime(["1999-01-01"]), "symbol": ["A"], "position": [1.0]}
    )
    with pytest.raises(ValueError, match="no positions line up"):
        backtest_positions(frame, positions)
