"""The recipe a registered model carries, and the flat views the registry and trials use."""

from __future__ import annotations

import msgspec
import pytest

from quant.performance import PredictionMetrics, TradingMetrics
from quant.recipe import (
    Recipe,
    flat_hyperparameters,
    flat_metrics,
    from_hyperparameters,
    higher_is_better,
    to_hyperparameters,
    trial_params,
)
from quant.specs import EstimatorSpec, FeatureSpec, TargetSpec, TradingSpec


def test_the_recipe_round_trips_through_version_hyperparameters() -> None:
    recipe = Recipe(features=[FeatureSpec(name="rsi", params={"window": 7})],
                    target=TargetSpec(kind="direction", horizon=5),
                    estimators=[EstimatorSpec(name="logistic_regression",
                                              hyperparameters={"C": 0.5})],
                    trading=TradingSpec(mode="long_flat", threshold=0.02))
    stored = msgspec.json.decode(msgspec.json.encode(to_hyperparameters(recipe)))
    assert stored["C"] == 0.5  # flat, for people and compare
    assert from_hyperparameters(stored) == recipe


def test_a_version_without_a_recipe_is_refused() -> None:
    with pytest.raises(ValueError, match="no quant recipe"):
        from_hyperparameters({"alpha": 1.0})
    with pytest.raises(ValueError, match="not readable"):
        from_hyperparameters({"recipe": {"features": [{"name": "astrology"}]}})


def test_ensemble_hyperparameters_are_prefixed_per_member() -> None:
    recipe = Recipe(estimators=[EstimatorSpec(name="ridge", hyperparameters={"alpha": 2.0}),
                                EstimatorSpec(name="lasso", hyperparameters={"alpha": 0.1})],
                    ensemble_method="stacked")
    assert flat_hyperparameters(recipe) == {"m0_ridge.alpha": 2.0, "m1_lasso.alpha": 0.1}
    assert recipe.estimator_label() == "ensemble-stacked(ridge+lasso)"
    params = trial_params(recipe)
    assert params["estimator"] == "ensemble-stacked(ridge+lasso)"
    assert params["horizon"] == 1 and params["m1_lasso.alpha"] == 0.1


def test_flat_metrics_keep_finite_numbers_only() -> None:
    prediction = PredictionMetrics(n=10, rmse=0.1, mae=0.05, direction_accuracy=0.6, ic=0.1)
    trading = TradingMetrics(n_periods=0, total_return=0.0, annual_return=0.0,
                             annual_volatility=0.0, sharpe=0.0, max_drawdown=0.0,
                             profit_factor=None, hit_rate=0.0, turnover=0.0, n_trades=0,
                             exposure=0.0, total_cost=0.0)
    flat = flat_metrics(prediction, trading)
    assert "profit_factor" not in flat and flat["n"] == 10.0 and flat["ic"] == 0.1
    assert all(isinstance(v, float) for v in flat.values())


@pytest.mark.parametrize(("metric", "higher"), [("sharpe", True), ("ic", True), ("rmse", False),
                                                ("max_drawdown", False), ("turnover", False)])
def test_metric_directions(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher
