"""What a registered model needs besides its bytes: the recipe that built it, stored in the
version's ``hyperparameters``, and the flat metrics and parameters the registry filters on.

A version's ``hyperparameters`` hold ``{"recipe": {...}}`` (features with their parameters,
target, estimators, walk-forward, trading rule, costs) plus the estimator's own
hyperparameters flattened for people and for ``compare`` (``alpha``, or ``m0_ridge.alpha`` in
an ensemble). Predicting and backtesting read the recipe back, so a model is always scored on
exactly the features it was trained on, computed the same way.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from quant.features import default_feature_set
from quant.performance import PredictionMetrics, TradingMetrics
from quant.specs import (
    CostSpec,
    EstimatorSpec,
    FeatureSpec,
    Scalar,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)

RECIPE_KEY = "recipe"

#: Metrics where smaller is better; every other metric of ours is better when larger.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "max_drawdown", "turnover", "annual_volatility",
                             "total_cost"})


class Recipe(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that defines a trained model apart from the data it saw."""

    features: list[FeatureSpec] = msgspec.field(default_factory=default_feature_set)
    target: TargetSpec = TargetSpec()
    estimators: list[EstimatorSpec] = msgspec.field(
        default_factory=lambda: [EstimatorSpec(name="ridge")])
    ensemble_method: Literal["mean", "stacked"] = "mean"
    walk_forward: WalkForwardSpec = WalkForwardSpec()
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()

    def estimator_label(self) -> str:
        """``ridge``, or ``ensemble(ridge+extra_trees)``."""
        names = [e.name for e in self.estimators]
        if len(names) == 1:
            return names[0]
        return f"ensemble-{self.ensemble_method}({'+'.join(names)})"


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def flat_hyperparameters(recipe: Recipe) -> dict[str, Scalar]:
    """The estimators' own hyperparameters, one level deep (prefixed per ensemble member)."""
    if len(recipe.estimators) == 1:
        return dict(recipe.estimators[0].hyperparameters)
    out: dict[str, Scalar] = {}
    for i, spec in enumerate(recipe.estimators):
        for key, value in spec.hyperparameters.items():
            out[f"m{i}_{spec.name}.{key}"] = value
    return out


def to_hyperparameters(recipe: Recipe) -> dict[str, Any]:
    """The version's ``hyperparameters``: the flat ones plus the full recipe."""
    return {**flat_hyperparameters(recipe), RECIPE_KEY: msgspec.to_builtins(recipe)}


def from_hyperparameters(hyperparameters: dict[str, Any]) -> Recipe:
    """The recipe stored with a version; ``ValueError`` if it has none (not a quant model)."""
    raw = hyperparameters.get(RECIPE_KEY)
    if not isinstance(raw, dict):
        raise ValueError("this model version has no quant recipe in its hyperparameters "
                         "(it was not trained by train_model)")
    try:
        return msgspec.convert(raw, Recipe)
    except msgspec.ValidationError as e:
        raise ValueError(f"the model's recipe is not readable: {e}") from e


def trial_params(recipe: Recipe) -> dict[str, Scalar]:
    """The parameters a trial is recorded with: estimator, its hyperparameters and the choices
    that most change results (target horizon, trading threshold, costs)."""
    return {
        "estimator": recipe.estimator_label(),
        **flat_hyperparameters(recipe),
        "target_kind": recipe.target.kind,
        "horizon": recipe.target.horizon,
        "trading_mode": recipe.trading.mode,
        "threshold": recipe.trading.threshold,
    }


def flat_metrics(prediction: PredictionMetrics, trading: TradingMetrics) -> dict[str, float]:
    """Out-of-sample metrics as one name -> float map (``None`` values, e.g. a profit factor
    with nothing traded, are left out: the registry keeps finite numbers only)."""
    out: dict[str, float] = {}
    for struct in (prediction, trading):
        for key, value in msgspec.structs.asdict(struct).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)
    return out
