"""Performance: metrics of a model's predictions and of trading them, all JSON-friendly
(finite floats or ``None``).

Conventions:
- A *signal* is the predicted return for regression targets and ``P(up) - 0.5`` for direction
  targets, so that 0 means "no view" for both.
- Positions are decided at bar t's close and earn the simple return from t to t+1; the arrays
  given to ``trading_metrics`` are aligned that way (``positions[t]`` with ``returns[t]``).
- Costs: ``cost_bps / 10_000`` times ``|position[t] - position[t-1]|``, starting flat.
- Profit factor: gross gains over gross losses of per-period net returns. With no losing period
  it is ``PROFIT_FACTOR_CAP`` (1000) if anything was gained, ``None`` if nothing moved at all;
  any larger ratio is capped too, so the value is always JSON-encodable.
- Sharpe is 0 when the return standard deviation is 0 (no trades, or constant returns).
- Zero-return bars are neither right nor wrong, in both hit measures: ``direction_accuracy`` is
  the share of bars with a non-zero realised return where ``signal > 0`` agrees with
  ``return > 0`` (a signal of exactly 0 counts as "not up"); ``hit_rate`` is the share of
  invested periods with a non-zero gross return where that return is positive. A day the price
  did not move (a holiday row, a halted stock) therefore moves neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
from scipy.stats import rankdata

from quant.specs import TargetKind, TradingSpec

PROFIT_FACTOR_CAP = 1000.0
_TINY = 1e-15


class PredictionMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Out-of-sample prediction quality.

    For direction targets ``rmse``/``mae`` compare the predicted probability with the 0/1
    label (``rmse**2`` is the Brier score).
    """

    n: int
    rmse: float
    mae: float
    direction_accuracy: float
    ic: float


class TradingMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Performance of a position series net of costs; fractions, not percent."""

    n_periods: int
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float
    profit_factor: float | None
    hit_rate: float
    turnover: float
    n_trades: int
    exposure: float
    total_cost: float


@dataclass(frozen=True)
class TradingResult:
    """Metrics plus the per-period series they came from (equity starts from 1.0)."""

    metrics: TradingMetrics
    equity: np.ndarray
    net_returns: np.ndarray


def _pair(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype="float64").ravel()
    a = np.asarray(actual, dtype="float64").ravel()
    if p.shape != a.shape:
        raise ValueError(f"length mismatch: {p.size} predictions, {a.size} actual values")
    keep = np.isfinite(p) & np.isfinite(a)
    return p[keep], a[keep]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error over pairs where both values are finite (0.0 if none)."""
    p, a = _pair(predicted, actual)
    return float(np.sqrt(np.mean((p - a) ** 2))) if p.size else 0.0


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error over pairs where both values are finite (0.0 if none)."""
    p, a = _pair(predicted, actual)
    return float(np.mean(np.abs(p - a))) if p.size else 0.0


def direction_accuracy(signal: np.ndarray, realised: np.ndarray) -> float:
    """Share of bars with a non-zero ``realised`` return where ``signal > 0`` agrees with
    ``realised > 0`` (0.0 if none); zero-return bars are left out (see the module)."""
    s, r = _pair(signal, realised)
    moved = r != 0
    return float(np.mean((s[moved] > 0) == (r[moved] > 0))) if moved.any() else 0.0


def information_coefficient(predicted: np.ndarray, realised: np.ndarray) -> float:
    """Spearman rank correlation; 0.0 with fewer than 3 pairs or a constant input."""
    p, r = _pair(predicted, realised)
    if p.size < 3 or np.ptp(p) == 0 or np.ptp(r) == 0:
        return 0.0
    return float(np.corrcoef(rankdata(p), rankdata(r))[0, 1])


def to_signal(predictions: np.ndarray, kind: TargetKind) -> np.ndarray:
    """Centre predictions so that 0 means "no view" (probabilities minus 0.5)."""
    values = np.asarray(predictions, dtype="float64")
    return values - 0.5 if kind == "direction" else values


def positions_from_signal(signal: np.ndarray, trading: TradingSpec) -> np.ndarray:
    """+1 above ``threshold``; -1 below ``-threshold`` (long_short) or 0 (long_flat); else 0.

    NaN signals give no position.
    """
    s = np.nan_to_num(np.asarray(signal, dtype="float64"), nan=0.0)
    long: np.ndarray = (s > trading.threshold).astype("float64")
    if trading.mode == "long_flat":
        return long
    position: np.ndarray = long - (s < -trading.threshold).astype("float64")
    return position


def prediction_metrics(
    predictions: np.ndarray, targets: np.ndarray, fwd_returns: np.ndarray, kind: TargetKind
) -> PredictionMetrics:
    """Errors against ``targets``; direction accuracy and IC of the signal against returns."""
    signal = to_signal(predictions, kind)
    return PredictionMetrics(
        n=int(_pair(predictions, targets)[0].size),
        rmse=rmse(predictions, targets),
        mae=mae(predictions, targets),
        direction_accuracy=direction_accuracy(signal, fwd_returns),
        ic=information_coefficient(signal, fwd_returns),
    )


def _as_matrix(values: np.ndarray) -> np.ndarray:
    matrix = np.asarray(values, dtype="float64")
    matrix = matrix[:, None] if matrix.ndim == 1 else matrix
    # A missing bar (symbol not trading yet) is flat and earns nothing.
    result: np.ndarray = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
    return result


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall of an equity curve that starts from 1.0, as a positive
    fraction (0.25 = lost a quarter from the peak)."""
    curve = np.concatenate([[1.0], np.asarray(equity, dtype="float64")])
    peaks = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peaks))


def sharpe_ratio(returns: np.ndarray, periods_per_year: float = 252) -> float:
    """Annualised mean over standard deviation (ddof=1) of per-period returns, 0.0 if flat."""
    r = np.asarray(returns, dtype="float64")
    if r.size < 2:
        return 0.0
    std = float(np.std(r, ddof=1))
    return 0.0 if std < _TINY else float(np.mean(r) / std * np.sqrt(periods_per_year))


def profit_factor(returns: np.ndarray) -> float | None:
    """Gross gains / gross losses, capped at ``PROFIT_FACTOR_CAP``; ``None`` if all zero."""
    r = np.asarray(returns, dtype="float64")
    gains = float(r[r > 0].sum())
    losses = float(-r[r < 0].sum())
    if losses <= 0:
        return PROFIT_FACTOR_CAP if gains > 0 else None
    return min(gains / losses, PROFIT_FACTOR_CAP)


def _annual_return(final_equity: float, n_periods: int, periods_per_year: float) -> float:
    if n_periods == 0:
        return 0.0
    if final_equity <= 0:
        return -1.0  # wiped out: compounding a negative equity has no meaning
    return float(final_equity ** (periods_per_year / n_periods) - 1.0)


def trading_metrics(
    positions: np.ndarray,
    realised_returns: np.ndarray,
    cost_bps: float,
    periods_per_year: float = 252,
) -> TradingResult:
    """Metrics of holding ``positions[t]`` over the simple return ``realised_returns[t]``.

    1-D arrays are one instrument. 2-D arrays (periods x symbols) are an equal-weight portfolio:
    each symbol gets ``1/n_symbols`` of capital, idle when the symbol has no bar (NaN).
    ``turnover`` is the mean traded fraction of capital per period, ``exposure`` the mean
    ``|position|``, ``hit_rate`` the share of invested periods with a non-zero gross return
    where it is positive.
    """
    pos, ret = _as_matrix(positions), _as_matrix(realised_returns)
    if pos.shape != ret.shape:
        raise ValueError(f"positions {pos.shape} and returns {ret.shape} differ in shape")
    n_symbols = max(pos.shape[1], 1)
    changes = np.abs(np.diff(pos, axis=0, prepend=0.0))
    costs = changes.sum(axis=1) * cost_bps / 10_000.0 / n_symbols
    gross = (pos * ret).sum(axis=1) / n_symbols
    net = gross - costs
    equity = np.cumprod(1.0 + net)
    n = int(net.size)
    invested = (np.abs(pos).sum(axis=1) > 0) & (gross != 0)
    final = float(equity[-1]) if n else 1.0
    metrics = TradingMetrics(
        n_periods=n,
        total_return=final - 1.0,
        annual_return=_annual_return(final, n, periods_per_year),
        annual_volatility=float(np.std(net, ddof=1) * np.sqrt(periods_per_year)) if n > 1 else 0.0,
        sharpe=sharpe_ratio(net, periods_per_year),
        max_drawdown=max_drawdown(equity) if n else 0.0,
        profit_factor=profit_factor(net),
        hit_rate=float(np.mean(gross[invested] > 0)) if invested.any() else 0.0,
        turnover=float(changes.sum() / n_symbols / n) if n else 0.0,
        n_trades=int(np.count_nonzero(changes)),
        exposure=float(np.abs(pos).sum() / n_symbols / n) if n else 0.0,
        total_cost=float(costs.sum()),
    )
    return TradingResult(metrics=metrics, equity=equity, net_returns=net)
