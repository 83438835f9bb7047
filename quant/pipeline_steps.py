"""Step kinds of declarative pipelines: one msgspec params schema per kind, and what each needs.

Params are user-submitted request bodies, so unknown fields are refused
(``forbid_unknown_fields``); cross-field rules live in ``__post_init__`` and surface as
``msgspec.ValidationError`` when params are decoded with ``msgspec.convert``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

import msgspec

from quant.estimators import hyperparameter_names
from quant.features import default_feature_set
from quant.performance import PredictionMetrics, TradingMetrics
from quant.search import Choice, Range
from quant.specs import (
    CostSpec,
    EstimatorSpec,
    FeatureSpec,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)

# Metrics a sweep may optimise or a promotion may compare on.
METRIC_NAMES = frozenset(
    f.name
    for f in (*msgspec.structs.fields(PredictionMetrics), *msgspec.structs.fields(TradingMetrics))
)


class StepParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of step params: submitted by users, so unknown fields are errors, not ignored."""


class LoadDataParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prices from the bundled demo data or a registered dataset, optionally clipped in time."""

    source: Literal["demo", "dataset"] = "demo"
    dataset: str | None = None
    symbols: list[str] | None = None
    start: str | None = None
    end: str | None = None

    def __post_init__(self) -> None:
        if self.source == "dataset" and not self.dataset:
            raise ValueError("source 'dataset' needs a dataset id")
        # fromisoformat raises a ValueError naming the bad value.
        start = datetime.fromisoformat(self.start) if self.start else None
        end = datetime.fromisoformat(self.end) if self.end else None
        if start is not None and end is not None and start >= end:
            raise ValueError("start must be before end")


class ValidateParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Data checks (``validation.validate_ohlcv``); warnings fail the step only on request."""

    max_abs_return: float = 0.5
    max_gap_factor: float = 3.0
    fail_on_warnings: bool = False


class IndicatorsParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Features for downstream model steps that do not list their own."""

    features: list[FeatureSpec] = msgspec.field(default_factory=default_feature_set)


class TrainingParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every training step shares; ``features=None`` takes them from an upstream
    ``indicators`` step, else ``features.default_feature_set()``."""

    target: TargetSpec = TargetSpec()
    walk_forward: WalkForwardSpec = WalkForwardSpec()
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()
    features: list[FeatureSpec] | None = None
    model_name: str | None = None


class ModelParams(TrainingParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    estimator: EstimatorSpec = EstimatorSpec(name="ridge")

    def __post_init__(self) -> None:
        _check_estimator(self.estimator, self.target)


class EnsembleParams(TrainingParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    estimators: list[EstimatorSpec] = []
    method: Literal["mean", "stacked"] = "mean"

    def __post_init__(self) -> None:
        if len(self.estimators) < 2:
            raise ValueError("an ensemble needs at least 2 estimators")
        for spec in self.estimators:
            _check_estimator(spec, self.target)


class SweepParams(TrainingParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Hyperparameter search for one estimator (``search`` module), scored walk-forward."""

    estimator: str = "ridge"
    space: dict[str, Choice | Range] = {}
    strategy: Literal["grid", "random"] = "random"
    n_trials: int = 20
    rounds: int = 1
    top_k: int = 3
    metric: str = "sharpe"
    higher_is_better: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        allowed = hyperparameter_names(self.estimator, self.target.kind)
        unknown = sorted(set(self.space) - set(allowed))
        if unknown:
            raise ValueError(f"estimator {self.estimator!r} has no hyperparameters {unknown}")
        if not self.space:
            raise ValueError("a sweep needs a non-empty space")
        if not 1 <= self.n_trials <= 500 or not 1 <= self.rounds <= 5 or self.top_k < 1:
            raise ValueError("need 1 <= n_trials <= 500, 1 <= rounds <= 5 and top_k >= 1")
        _check_metric(self.metric)


class BacktestParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Backtest the upstream model's predictions or a rule-based strategy."""

    strategy: Literal["predictions", "ma_crossover", "momentum"] = "predictions"
    fast: int = 20
    slow: int = 50
    lookback: int = 20
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow or self.lookback < 1:
            raise ValueError("need 1 <= fast < slow and lookback >= 1")


class RiskReportParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``risk.risk_report`` of upstream returns; optional volatility targeting."""

    confidence: float = 0.95
    target_vol: float | None = None
    max_leverage: float = 2.0
    vol_lookback: int = 20

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError("confidence must be in [0.5, 1)")
        if (self.target_vol is not None and self.target_vol <= 0) or self.max_leverage <= 0:
            raise ValueError("target_vol and max_leverage must be positive")


class PromoteParams(StepParams, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Promote the upstream model if ``metric`` beats the current one by ``min_improvement``."""

    model_name: str
    metric: str = "sharpe"
    higher_is_better: bool = True
    min_improvement: float = 0.0
    stage: Literal["staging", "production"] = "production"

    def __post_init__(self) -> None:
        _check_metric(self.metric)


def _check_estimator(spec: EstimatorSpec, target: TargetSpec) -> None:
    allowed = hyperparameter_names(spec.name, target.kind)
    unknown = sorted(set(spec.hyperparameters) - set(allowed))
    if unknown:
        raise ValueError(f"estimator {spec.name!r} has no hyperparameters {unknown}")


def _check_metric(metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRIC_NAMES)}")


class StepKind(NamedTuple):
    """A step kind: its params schema and the upstream kinds it needs (one of each group)."""

    params: type[StepParams]
    needs: tuple[frozenset[str], ...] = ()


_DATA = frozenset({"load_data"})
MODEL_KINDS = frozenset({"model", "ensemble", "sweep"})
STEP_KINDS: dict[str, StepKind] = {
    "load_data": StepKind(LoadDataParams),
    "validate": StepKind(ValidateParams, (_DATA,)),
    "indicators": StepKind(IndicatorsParams, (_DATA,)),
    "model": StepKind(ModelParams, (_DATA,)),
    "ensemble": StepKind(EnsembleParams, (_DATA,)),
    "sweep": StepKind(SweepParams, (_DATA,)),
    "backtest": StepKind(BacktestParams, (_DATA,)),
    "risk_report": StepKind(RiskReportParams, (MODEL_KINDS | {"backtest"},)),
    "promote_if_better": StepKind(PromoteParams, (MODEL_KINDS,)),
}
