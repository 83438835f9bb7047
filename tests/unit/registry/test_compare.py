"""Metric directions and the comparison table."""

from __future__ import annotations

import pytest

from services.registry.compare import MetricDirections, compare, parse_overrides


@pytest.mark.parametrize(("name", "direction"), [
    ("accuracy", "higher"), ("direction_accuracy", "higher"), ("val_rmse", "lower"),
    ("sharpe_ratio", "higher"), ("max_drawdown", "lower"), ("max_drawdown_pct", "lower"),
    ("profit_factor", "higher"), ("MAE", "lower"), ("rank_ic", "higher"),
    ("weird_thing", "unknown"), ("n_trades", "unknown"),
])
def test_default_directions(name: str, direction: str) -> None:
    assert MetricDirections()(name) == direction


def test_overrides_win_and_add() -> None:
    directions = MetricDirections(parse_overrides("turnover:higher,n_trades:higher"))
    assert directions("turnover") == "higher"
    assert directions("n_trades") == "higher"
    assert directions("rmse") == "lower"


def test_winners_deltas_ties_and_missing_values() -> None:
    refs = ["m@1", "m@2", "m@3"]
    rows = compare(refs, [{"rmse": 0.03, "sharpe": 1.0, "odd": 1.0, "mae": 0.1},
                          {"rmse": 0.01, "sharpe": 2.0, "odd": 2.0, "mae": 0.1},
                          {"rmse": 0.02, "odd": 3.0}], MetricDirections())
    by = {r.name: r for r in rows}
    assert [r.name for r in rows] == ["mae", "odd", "rmse", "sharpe"]
    assert by["rmse"].winner == "m@2" and by["rmse"].deltas == pytest.approx([0, -0.02, -0.01])
    assert by["sharpe"].winner == "m@2" and by["sharpe"].values == [1.0, 2.0, None]
    assert by["sharpe"].deltas == [0.0, 1.0, None]
    assert by["odd"].direction == "unknown" and by["odd"].winner is None
    assert by["mae"].winner is None  # tie between m@1 and m@2


def test_a_metric_only_one_version_has_has_no_winner() -> None:
    rows = compare(["a@1", "a@2"], [{"rmse": 0.1}, {}], MetricDirections())
    assert rows[0].winner is None and rows[0].deltas == [0.0, None]
