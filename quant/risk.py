"""Risk measures of a return series: historical VaR/CVaR, drawdowns, volatility, sizing.

Returns are simple per-period returns; losses are reported as positive fractions (a VaR of 0.02
means "lose 2% or more on the worst (1 - confidence) share of periods").
"""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd

from quant.performance import max_drawdown


class DrawdownStats(msgspec.Struct, frozen=True, kw_only=True):
    """Drawdowns of the equity curve compounded from the returns, starting from 1.0.

    ``max_duration`` is the longest run of periods spent below a previous peak.
    ``peak_index``/``trough_index`` locate the maximum drawdown on the curve *including* its
    starting point: index 0 is the 1.0 before the first period, index i the equity after
    period i-1. Both are ``None`` when there is no drawdown.
    """

    max_drawdown: float
    current_drawdown: float
    max_duration: int
    peak_index: int | None
    trough_index: int | None


class RiskReport(msgspec.Struct, frozen=True, kw_only=True):
    """The risk summary of one return series."""

    n_periods: int
    confidence: float
    var: float
    cvar: float
    annual_volatility: float
    drawdown: DrawdownStats


def _clean(returns: np.ndarray | pd.Series) -> np.ndarray:
    values = np.asarray(returns, dtype="float64").ravel()
    result: np.ndarray = values[np.isfinite(values)]
    return result


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")


def historical_var(returns: np.ndarray | pd.Series, confidence: float = 0.95) -> float:
    """Minus the empirical ``1 - confidence`` quantile (linear interpolation); 0.0 if empty.

    Negative when even the bad tail is a gain.
    """
    _check_confidence(confidence)
    r = _clean(returns)
    return float(-np.quantile(r, 1.0 - confidence)) if r.size else 0.0


def historical_cvar(returns: np.ndarray | pd.Series, confidence: float = 0.95) -> float:
    """Expected shortfall: minus the mean of the returns at or below the VaR quantile."""
    _check_confidence(confidence)
    r = _clean(returns)
    if r.size == 0:
        return 0.0
    cutoff = np.quantile(r, 1.0 - confidence)
    return float(-np.mean(r[r <= cutoff]))


def annualised_volatility(returns: np.ndarray | pd.Series, periods_per_year: float = 252) -> float:
    """Standard deviation (ddof=1) times ``sqrt(periods_per_year)``; 0.0 below 2 periods."""
    r = _clean(returns)
    return float(np.std(r, ddof=1) * np.sqrt(periods_per_year)) if r.size > 1 else 0.0


def drawdown_stats(returns: np.ndarray | pd.Series) -> DrawdownStats:
    """Drawdown figures of ``cumprod(1 + returns)``; see ``DrawdownStats``."""
    r = _clean(returns)
    if r.size == 0:
        return DrawdownStats(
            max_drawdown=0.0,
            current_drawdown=0.0,
            max_duration=0,
            peak_index=None,
            trough_index=None,
        )
    curve = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    peaks = np.maximum.accumulate(curve)
    drawdown = 1.0 - curve / peaks
    trough = int(np.argmax(drawdown))
    longest = run = 0
    for below in drawdown > 0:
        run = run + 1 if below else 0
        longest = max(longest, run)
    has_drawdown = drawdown[trough] > 0
    peak = int(np.flatnonzero(curve[: trough + 1] >= peaks[trough])[-1])
    return DrawdownStats(
        max_drawdown=max_drawdown(curve[1:]),
        current_drawdown=float(drawdown[-1]),
        max_duration=longest,
        peak_index=peak if has_drawdown else None,
        trough_index=trough if has_drawdown else None,
    )


def risk_report(
    returns: np.ndarray | pd.Series, *, confidence: float = 0.95, periods_per_year: float = 252
) -> RiskReport:
    """VaR, CVaR, annualised volatility and drawdowns of one return series."""
    r = _clean(returns)
    return RiskReport(
        n_periods=int(r.size),
        confidence=confidence,
        var=historical_var(r, confidence),
        cvar=historical_cvar(r, confidence),
        annual_volatility=annualised_volatility(r, periods_per_year),
        drawdown=drawdown_stats(r),
    )


def vol_target_scale(
    returns: np.ndarray | pd.Series,
    *,
    target_vol: float = 0.10,
    lookback: int = 20,
    max_leverage: float = 2.0,
    periods_per_year: float = 252,
) -> np.ndarray:
    """Position scale per period so that the position's annual volatility is ``target_vol``.

    ``scale[t] = min(target_vol / realised_vol[t], max_leverage)`` where ``realised_vol[t]``
    is the annualised std of the ``lookback`` returns up to and including t, so the scale at t
    is known at t's close and applies from t to t+1. Until ``lookback`` returns exist the
    scale is 0 (no estimate, no position); zero realised volatility gets ``max_leverage``.
    """
    if target_vol <= 0 or max_leverage <= 0 or lookback < 2:
        raise ValueError("target_vol and max_leverage must be > 0 and lookback at least 2")
    series = pd.Series(np.asarray(returns, dtype="float64").ravel())
    realised = series.rolling(lookback, min_periods=lookback).std(ddof=1) * np.sqrt(
        periods_per_year
    )
    with np.errstate(divide="ignore"):
        scale = np.minimum(target_vol / realised.to_numpy(), max_leverage)
    result: np.ndarray = np.nan_to_num(scale, nan=0.0)
    return result


def position_size(
    realised_vol: float, *, target_vol: float = 0.10, max_leverage: float = 2.0
) -> float:
    """One sizing decision: ``min(target_vol / realised_vol, max_leverage)``, both annualised."""
    if realised_vol < 0 or target_vol <= 0 or max_leverage <= 0:
        raise ValueError("realised_vol must be >= 0, target_vol and max_leverage > 0")
    return max_leverage if realised_vol == 0 else min(target_vol / realised_vol, max_leverage)
