"""Backtests of predictions and of simple rule-based strategies, without look-ahead.

Timing: a position decided at bar t's close (from data up to t) earns the simple return from
t's close to t+1's close (``fill="close"``), or, filled at bar t+1's open
(``fill="next_open"``), from t+1's open to t+2's open. Bars without that next return (the last
one, or two) are not traded.
Several symbols form an equal-weight portfolio (see ``metrics.trading_metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
import numpy as np
import pandas as pd

from quant.data import sort_frame
from quant.performance import (
    TradingMetrics,
    TradingResult,
    positions_from_signal,
    to_signal,
    trading_metrics,
)
from quant.specs import CostSpec, TargetKind, TradingSpec

PositionMode = Literal["long_short", "long_flat"]
Fill = Literal["close", "next_open"]


class BacktestResult(msgspec.Struct, frozen=True, kw_only=True):
    """Metrics and the equity curve as ``(ISO timestamp, equity)`` pairs, starting from 1.0;
    ``positions`` holds each symbol's position per bar, aligned with ``equity`` (0 where the
    symbol had no bar)."""

    metrics: TradingMetrics
    equity: list[tuple[str, float]]
    symbols: list[str]
    positions: dict[str, list[float]] = {}

    def equity_points(self, max_points: int = 500) -> list[tuple[str, float]]:
        """The curve thinned to at most ``max_points`` (see ``downsample``)."""
        return downsample(self.equity, max_points)


def downsample(points: list[tuple[str, float]], max_points: int) -> list[tuple[str, float]]:
    """Evenly spaced subset of at most ``max_points`` that keeps the first and last points."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    if len(points) <= max_points:
        return list(points)
    picks = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return [points[i] for i in picks]


def next_returns(frame: pd.DataFrame, fill: Fill = "close") -> pd.DataFrame:
    """``timestamp, symbol, next_return`` for ``sort_frame(frame)``: what a position decided at
    t earns: t close to t+1 close, or t+1 open to t+2 open for ``fill="next_open"``."""
    bars = sort_frame(frame)
    grouped = bars.groupby("symbol", sort=False)
    if fill == "next_open":
        ret = grouped["open"].shift(-2) / grouped["open"].shift(-1) - 1.0
    else:
        ret = grouped["close"].shift(-1) / bars["close"] - 1.0
    return pd.DataFrame(
        {
            "timestamp": bars["timestamp"],
            "symbol": bars["symbol"],
            "next_return": ret.astype("float64"),
        }
    )


def portfolio_result(
    rows: pd.DataFrame, *, cost_bps: float, periods_per_year: float = 252
) -> tuple[TradingResult, pd.DataFrame]:
    """Trading result of rows with ``timestamp, symbol, position, next_return``, and the
    positions it traded (timestamps by symbols, NaN where a symbol had no bar).

    Rows without a known next return are dropped; symbols are pivoted into columns.
    """
    known = rows[np.isfinite(rows["next_return"].to_numpy(dtype="float64"))]
    positions = known.pivot_table(
        index="timestamp", columns="symbol", values="position", aggfunc="last"
    )
    returns = known.pivot_table(
        index="timestamp", columns="symbol", values="next_return", aggfunc="last"
    ).reindex(index=positions.index, columns=positions.columns)
    result = trading_metrics(positions.to_numpy(), returns.to_numpy(), cost_bps, periods_per_year)
    return result, positions


def backtest_positions(
    frame: pd.DataFrame,
    positions: pd.DataFrame,
    *,
    costs: CostSpec | None = None,
    periods_per_year: float = 252,
    fill: Fill = "close",
) -> BacktestResult:
    """Backtest ``positions`` (``timestamp, symbol, position``) against ``frame``'s prices,
    filled by the ``fill`` convention (see the module)."""
    costs = costs or CostSpec()
    merged = next_returns(frame, fill).merge(
        positions[["timestamp", "symbol", "position"]], on=["timestamp", "symbol"], how="inner"
    )
    if merged.empty:
        raise ValueError("no positions line up with the price data")
    result, held = portfolio_result(merged, cost_bps=costs.bps, periods_per_year=periods_per_year)
    stamps = pd.DatetimeIndex(held.index)
    equity = [(ts.isoformat(), float(v)) for ts, v in zip(stamps, result.equity, strict=True)]
    positions = {str(symbol): held[symbol].fillna(0.0).astype(float).tolist()
                 for symbol in held.columns}
    return BacktestResult(
        metrics=result.metrics, equity=equity, symbols=sorted(merged["symbol"].unique().tolist()),
        positions=positions,
    )


def backtest_predictions(
    frame: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    kind: TargetKind = "regression",
    trading: TradingSpec | None = None,
    costs: CostSpec | None = None,
    periods_per_year: float = 252,
) -> BacktestResult:
    """Backtest model output (``timestamp, symbol, prediction``: a predicted return, or a
    probability of an up move for ``kind="direction"``) turned into positions by ``trading``."""
    trading = trading or TradingSpec()
    signal = to_signal(predictions["prediction"].to_numpy(dtype="float64"), kind)
    positioned = predictions[["timestamp", "symbol"]].assign(
        position=positions_from_signal(signal, trading)
    )
    return backtest_positions(frame, positioned, costs=costs, periods_per_year=periods_per_year,
                              fill=trading.fill)


def _positions_frame(bars: pd.DataFrame, signal: pd.Series, mode: PositionMode) -> pd.DataFrame:
    trading = TradingSpec(mode=mode, threshold=0.0)
    position = positions_from_signal(signal.to_numpy(dtype="float64"), trading)
    return pd.DataFrame(
        {"timestamp": bars["timestamp"], "symbol": bars["symbol"], "position": position}
    )


def ma_crossover(
    frame: pd.DataFrame, *, fast: int = 20, slow: int = 50, mode: PositionMode = "long_short"
) -> pd.DataFrame:
    """Long when the ``fast`` simple moving average of close is above the ``slow`` one.

    Returns ``timestamp, symbol, position``; flat until the slow average exists.
    """
    if not 1 <= fast < slow:
        raise ValueError(f"ma_crossover needs 1 <= fast < slow, got fast={fast}, slow={slow}")
    bars = sort_frame(frame)
    close = bars.groupby("symbol", sort=False)["close"]
    fast_ma = close.transform(lambda s: s.rolling(fast, min_periods=fast).mean())
    slow_ma = close.transform(lambda s: s.rolling(slow, min_periods=slow).mean())
    return _positions_frame(bars, fast_ma - slow_ma, mode)


def momentum(
    frame: pd.DataFrame, *, lookback: int = 20, mode: PositionMode = "long_short"
) -> pd.DataFrame:
    """Long after a positive ``lookback``-bar return, short (or flat) after a negative one.

    Returns ``timestamp, symbol, position``; flat until ``lookback`` bars exist.
    """
    if lookback < 1:
        raise ValueError(f"momentum lookback must be at least 1, got {lookback}")
    bars = sort_frame(frame)
    past = bars.groupby("symbol", sort=False)["close"].shift(lookback)
    return _positions_frame(bars, bars["close"] / past - 1.0, mode)


STRATEGIES: dict[str, Callable[..., pd.DataFrame]] = {
    "ma_crossover": ma_crossover,
    "momentum": momentum,
}


def run_strategy(
    frame: pd.DataFrame,
    name: str,
    params: dict[str, int | str] | None = None,
    *,
    costs: CostSpec | None = None,
    periods_per_year: float = 252,
) -> BacktestResult:
    """Backtest a named rule-based strategy from ``STRATEGIES`` with keyword ``params``."""
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    try:
        positions = strategy(frame, **(params or {}))
    except TypeError as e:
        raise ValueError(f"bad parameters for strategy {name!r}: {e}") from e
    return backtest_positions(frame, positions, costs=costs, periods_per_year=periods_per_year)
