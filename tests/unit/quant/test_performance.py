"""Metrics against hand-computed examples, and their edge cases."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from quant.performance import (
    PROFIT_FACTOR_CAP,
    direction_accuracy,
    information_coefficient,
    mae,
    max_drawdown,
    positions_from_signal,
    prediction_metrics,
    rmse,
    to_signal,
    trading_metrics,
)
from quant.specs import TradingSpec


def test_errors_by_hand() -> None:
    assert rmse(np.array([1.0, 2, 3]), np.array([1.0, 2, 5])) == pytest.approx(math.sqrt(4 / 3))
    assert mae(np.array([1.0, 2, 3]), np.array([1.0, 2, 5])) == pytest.approx(2 / 3)
    # non-finite pairs are ignored, not propagated
    assert rmse(np.array([1.0, np.nan]), np.array([2.0, 1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="length mismatch"):
        rmse(np.array([1.0]), np.array([1.0, 2.0]))


def test_direction_accuracy_by_hand() -> None:
    signal = np.array([0.1, -0.2, 0.3, -0.1])
    realised = np.array([0.05, 0.01, -0.02, -0.03])
    assert direction_accuracy(signal, realised) == 0.5


def test_information_coefficient() -> None:
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert information_coefficient(x, x**3) == pytest.approx(1.0)
    assert information_coefficient(x, -x) == pytest.approx(-1.0)
    assert information_coefficient(np.ones(5), x) == 0.0
    assert information_coefficient(x[:2], x[:2]) == 0.0
    assert information_coefficient(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == (
        pytest.approx(0.8)
    )


def test_positions_from_signal() -> None:
    signal = np.array([0.3, 0.05, -0.05, -0.3, np.nan])
    long_short = positions_from_signal(signal, TradingSpec(threshold=0.1))
    long_flat = positions_from_signal(signal, TradingSpec(mode="long_flat", threshold=0.1))
    assert long_short.tolist() == [1.0, 0.0, 0.0, -1.0, 0.0]
    assert long_flat.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    probabilities = np.array([0.7, 0.5, 0.2])
    assert positions_from_signal(to_signal(probabilities, "direction"), TradingSpec()).tolist() == [
        1.0,
        0.0,
        -1.0,
    ]


def test_trading_metrics_by_hand() -> None:
    positions = np.array([1.0, 1.0, -1.0, 0.0])
    returns = np.array([0.10, -0.05, 0.02, 0.03])
    result = trading_metrics(positions, returns, cost_bps=10)
    # position changes 1, 0, 2, 1 at 10 bps; gross 0.1, -0.05, -0.02, 0
    net = np.array([0.099, -0.05, -0.022, -0.001])
    np.testing.assert_allclose(result.net_returns, net)
    equity = np.cumprod(1 + net)
    np.testing.assert_allclose(result.equity, equity)
    m = result.metrics
    assert m.total_return == pytest.approx(equity[-1] - 1)
    assert m.max_drawdown == pytest.approx(1 - equity[-1] / equity[0])
    assert m.profit_factor == pytest.approx(0.099 / 0.073)
    assert m.hit_rate == pytest.approx(1 / 3)
    assert m.turnover == pytest.approx(1.0)
    assert m.n_trades == 3
    assert m.exposure == pytest.approx(0.75)
    assert m.total_cost == pytest.approx(0.004)
    assert m.sharpe == pytest.approx(net.mean() / net.std(ddof=1) * math.sqrt(252))
    assert m.annual_volatility == pytest.approx(net.std(ddof=1) * math.sqrt(252))
    assert m.annual_return == pytest.approx(equity[-1] ** (252 / 4) - 1)


def test_costs_reduce_returns_by_traded_amount() -> None:
    positions = np.array([1.0, -1.0, 1.0, -1.0])
    returns = np.zeros(4)
    m = trading_metrics(positions, returns, cost_bps=5).metrics
    assert m.total_cost == pytest.approx((1 + 2 + 2 + 2) * 5e-4)
    assert m.total_return == pytest.approx((1 - 5e-4) * (1 - 1e-3) ** 3 - 1)
    assert m.turnover == pytest.approx(7 / 4)


def test_no_trades() -> None:
    m = trading_metrics(np.zeros(10), np.linspace(-0.01, 0.01, 10), cost_bps=10).metrics
    assert m.sharpe == 0.0
    assert m.total_return == 0.0
    assert m.max_drawdown == 0.0
    assert m.profit_factor is None
    assert m.hit_rate == 0.0 and m.n_trades == 0 and m.turnover == 0.0


def test_no_losses_caps_profit_factor_and_stays_json_friendly() -> None:
    result = trading_metrics(np.ones(3), np.array([0.01, 0.02, 0.0]), cost_bps=0)
    assert result.metrics.profit_factor == PROFIT_FACTOR_CAP
    assert result.metrics.max_drawdown == 0.0
    encoded = msgspec.json.decode(msgspec.json.encode(result.metrics))
    assert all(v is None or math.isfinite(v) for v in encoded.values())


def test_constant_returns_give_zero_sharpe() -> None:
    assert trading_metrics(np.ones(5), np.full(5, 0.01), cost_bps=0).metrics.sharpe == 0.0


def test_empty_series() -> None:
    m = trading_metrics(np.array([]), np.array([]), cost_bps=1).metrics
    assert m.n_periods == 0 and m.total_return == 0.0 and m.annual_return == 0.0


def test_wipe_out_is_finite() -> None:
    m = trading_metrics(np.ones(2), np.array([-1.5, 0.1]), cost_bps=0).metrics
    assert m.annual_return == -1.0
    assert math.isfinite(m.max_drawdown)


def test_portfolio_of_two_symbols_is_equal_weight() -> None:
    positions = np.array([[1.0, -1.0], [1.0, np.nan]])
    returns = np.array([[0.02, 0.04], [0.01, np.nan]])
    result = trading_metrics(positions, returns, cost_bps=0)
    # half the capital in each symbol; the missing bar is flat
    np.testing.assert_allclose(result.net_returns, [(0.02 - 0.04) / 2, 0.01 / 2])
    assert result.metrics.n_trades == 3  # enter A, enter B, leave B
    with pytest.raises(ValueError, match="differ in shape"):
        trading_metrics(positions, returns[:, :1], cost_bps=0)


def test_max_drawdown_by_hand() -> None:
    assert max_drawdown(np.array([1.1, 0.55, 0.66, 1.2, 0.9])) == pytest.approx(0.5)
    assert max_drawdown(np.array([0.8, 0.9])) == pytest.approx(0.2)  # from the starting 1.0


def test_prediction_metrics_for_both_kinds() -> None:
    fwd = np.array([0.01, -0.02, 0.03, -0.01])
    reg = prediction_metrics(np.array([0.02, -0.01, 0.01, 0.01]), fwd, fwd, "regression")
    assert reg.n == 4 and reg.direction_accuracy == 0.75
    assert reg.rmse == pytest.approx(rmse(np.array([0.02, -0.01, 0.01, 0.01]), fwd))
    labels = (fwd > 0).astype(float)
    direction = prediction_metrics(np.array([0.9, 0.2, 0.6, 0.4]), labels, fwd, "direction")
    assert direction.direction_accuracy == 1.0
    assert direction.rmse**2 == pytest.approx(
        np.mean((np.array([0.9, 0.2, 0.6, 0.4]) - labels) ** 2)
    )
    assert direction.ic == pytest.approx(1 - 6 * 2 / (4 * 15))  # ranks 4,1,3,2 vs 3,1,4,2


def test_zero_return_bars_count_in_neither_hit_measure() -> None:
    signal = np.array([0.1, -0.2, 0.3, 0.1])
    realised = np.array([0.05, 0.0, -0.02, 0.0])  # two bars where nothing moved
    assert direction_accuracy(signal, realised) == 0.5  # one right of the two that moved
    result = trading_metrics(np.array([1.0, -1.0, 1.0, 1.0]), realised, 0.0)
    assert result.metrics.hit_rate == 0.5  # the same two periods decide it
