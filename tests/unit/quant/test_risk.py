"""VaR/CVaR, drawdowns, volatility and volatility-targeted sizing against hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant.risk import (
    annualised_volatility,
    drawdown_stats,
    historical_cvar,
    historical_var,
    position_size,
    risk_report,
    vol_target_scale,
)

RETURNS = np.array([-0.10, -0.05, -0.02, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])


def test_var_and_cvar_by_hand() -> None:
    # 10% quantile, linear interpolation: position 0.9 between -0.10 and -0.05
    assert historical_var(RETURNS, 0.9) == pytest.approx(0.055)
    assert historical_cvar(RETURNS, 0.9) == pytest.approx(0.10)
    assert historical_cvar(RETURNS, 0.9) >= historical_var(RETURNS, 0.9)
    assert historical_var(np.array([]), 0.95) == 0.0
    with pytest.raises(ValueError, match="confidence"):
        historical_var(RETURNS, 1.0)


def test_volatility() -> None:
    assert annualised_volatility(RETURNS) == pytest.approx(np.std(RETURNS, ddof=1) * math.sqrt(252))
    assert annualised_volatility(np.array([0.01])) == 0.0


def test_drawdown_by_hand() -> None:
    stats = drawdown_stats(np.array([0.1, -0.5, 0.2, 0.1, 1.0, -0.1]))
    # equity 1.1, 0.55, 0.66, 0.726, 1.452, 1.3068
    assert stats.max_drawdown == pytest.approx(0.5)
    assert stats.peak_index == 1 and stats.trough_index == 2
    assert stats.max_duration == 3
    assert stats.current_drawdown == pytest.approx(0.1)
    rising = drawdown_stats(np.array([0.01, 0.02]))
    assert rising.max_drawdown == 0.0 and rising.peak_index is None


def test_vol_target_scale_is_capped_and_causal() -> None:
    rng = np.random.default_rng(0)
    returns = np.concatenate([rng.normal(0, 0.02, 100), rng.normal(0, 0.001, 100)])
    scale = vol_target_scale(returns, target_vol=0.10, lookback=20, max_leverage=2.0)
    assert (scale[:19] == 0).all()
    expected = 0.10 / (np.std(returns[:20], ddof=1) * math.sqrt(252))
    assert scale[19] == pytest.approx(expected)
    assert scale[150:].max() == 2.0  # calm period hits the leverage cap
    mutated = returns.copy()
    mutated[120:] *= 10
    assert np.array_equal(vol_target_scale(mutated)[:120], vol_target_scale(returns)[:120])


def test_position_size() -> None:
    assert position_size(0.2, target_vol=0.1) == pytest.approx(0.5)
    assert position_size(0.01, target_vol=0.1, max_leverage=3) == 3
    assert position_size(0.0) == 2.0
    with pytest.raises(ValueError):
        position_size(-0.1)


def test_risk_report() -> None:
    report = risk_report(RETURNS, confidence=0.9)
    assert report.n_periods == 10
    assert report.var == pytest.approx(0.055)
    assert report.drawdown.max_drawdown > 0.1
