"""Walk-forward training: out-of-sample evaluation, a final model, and scoring the latest bar.

Flow: features and targets per symbol (no look-ahead) -> rows with finite features and a known
target -> walk-forward folds by timestamp -> fit a fresh model per fold and score its test
window -> aggregate metrics over all test windows only -> refit on every labelled row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import numpy as np
import pandas as pd
from sklearn.base import clone

from quant.backtest import downsample, portfolio_result
from quant.data import finite_mask
from quant.estimators import (
    EnsembleMethod,
    Model,
    build_model,
    native_importances,
    permutation_importances,
    predict_scores,
)
from quant.features import compute_features, default_feature_set, feature_columns
from quant.performance import (
    PredictionMetrics,
    TradingMetrics,
    positions_from_signal,
    prediction_metrics,
    to_signal,
)
from quant.specs import (
    CostSpec,
    EstimatorSpec,
    FeatureSpec,
    TargetKind,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)
from quant.targets import labelled, make_targets
from quant.walkforward import Split, rows_in, timestamp_codes, walk_forward_splits

_MIN_TEST_ROWS = 20


class FoldMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """One walk-forward fold: its time ranges (ISO) and out-of-sample metrics."""

    fold: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    n_train: int
    n_test: int
    prediction: PredictionMetrics
    trading: TradingMetrics


class TrainSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Everything JSON-friendly about a training run (what the executor stores and returns)."""

    kind: TargetKind
    features: list[str]
    n_rows: int
    folds: list[FoldMetrics]
    prediction: PredictionMetrics
    trading: TradingMetrics
    importances: dict[str, float]
    importance_method: str
    warnings: list[str] = []


@dataclass
class TrainResult:
    """Outcome of ``train_walk_forward``.

    ``predictions`` holds one row per out-of-sample bar: ``timestamp, symbol, fold,
    prediction, signal, position, target, fwd_return, next_return``. ``equity`` is the
    out-of-sample equity curve, net of costs, indexed by timestamp. ``model`` is fitted on
    every labelled row and is what gets registered.
    """

    kind: TargetKind
    feature_names: list[str]
    n_rows: int
    folds: list[FoldMetrics]
    prediction: PredictionMetrics
    trading: TradingMetrics
    predictions: pd.DataFrame
    equity: pd.Series
    model: Model
    importances: dict[str, float]
    importance_method: str
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> TrainSummary:
        return TrainSummary(
            kind=self.kind,
            features=self.feature_names,
            n_rows=self.n_rows,
            folds=self.folds,
            prediction=self.prediction,
            trading=self.trading,
            importances=self.importances,
            importance_method=self.importance_method,
            warnings=self.warnings,
        )

    def equity_points(self, max_points: int = 500) -> list[tuple[str, float]]:
        points = [(ts.isoformat(), float(v)) for ts, v in self.equity.items()]
        return downsample(points, max_points)


def build_design(
    frame: pd.DataFrame, features: Sequence[FeatureSpec], target: TargetSpec
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Usable rows (finite features, known target) sorted by timestamp then symbol, the
    feature column names, and warnings about what was dropped."""
    names = feature_columns(features)
    feats = compute_features(frame, features)
    targets = make_targets(frame, target)
    design = pd.concat([feats, targets[["fwd_return", "next_return", "target"]]], axis=1)
    has_features = finite_mask(feats[names])
    usable = has_features & labelled(targets)
    warnings: list[str] = []
    warmup = int((~has_features).sum())
    if warmup:
        warnings.append(f"{warmup} rows dropped for feature warm-up or missing values")
    design = design[usable].sort_values(["timestamp", "symbol"], kind="mergesort")
    return design.reset_index(drop=True), names, warnings


@dataclass(frozen=True)
class _Plan:
    """What every fold shares: the design rows, their timestamp codes and the settings."""

    design: pd.DataFrame
    names: list[str]
    codes: np.ndarray
    template: Model
    kind: TargetKind
    trading: TradingSpec
    costs: CostSpec
    periods_per_year: float


def _prediction_metrics(rows: pd.DataFrame, kind: TargetKind) -> PredictionMetrics:
    return prediction_metrics(
        rows["prediction"].to_numpy(),
        rows["target"].to_numpy(),
        rows["fwd_return"].to_numpy(),
        kind,
    )


def _run_fold(plan: _Plan, index: int, split: Split) -> tuple[FoldMetrics, pd.DataFrame, Model]:
    """Fit a fresh model on the fold's training rows and score its test rows."""
    train = plan.design.iloc[rows_in(plan.codes, split.train)]
    model = clone(plan.template).fit(train[plan.names].to_numpy(), train["target"].to_numpy())
    test = plan.design.iloc[rows_in(plan.codes, split.test)].copy()
    test["fold"] = index
    test["prediction"] = predict_scores(model, test[plan.names].to_numpy())
    test["signal"] = to_signal(test["prediction"].to_numpy(), plan.kind)
    test["position"] = positions_from_signal(test["signal"].to_numpy(), plan.trading)
    trading, _ = portfolio_result(
        test, cost_bps=plan.costs.bps, periods_per_year=plan.periods_per_year
    )
    metrics = FoldMetrics(
        fold=index,
        train_start=train["timestamp"].min().isoformat(),
        train_end=train["timestamp"].max().isoformat(),
        test_start=test["timestamp"].min().isoformat(),
        test_end=test["timestamp"].max().isoformat(),
        n_train=len(train),
        n_test=len(test),
        prediction=_prediction_metrics(test, plan.kind),
        trading=trading.metrics,
    )
    return metrics, test, model


def _importances(
    model: Model, last_model: Model, last_test: pd.DataFrame, names: list[str]
) -> tuple[dict[str, float], str]:
    native = native_importances(model, names)
    if native is not None:
        return native, "native"
    values = permutation_importances(
        last_model, last_test[names].to_numpy(), last_test["target"].to_numpy(), names
    )
    return values, "permutation"


_PREDICTION_COLUMNS = [
    "timestamp",
    "symbol",
    "fold",
    "prediction",
    "signal",
    "position",
    "target",
    "fwd_return",
    "next_return",
]


def train_walk_forward(
    frame: pd.DataFrame,
    *,
    features: Sequence[FeatureSpec] | None = None,
    target: TargetSpec | None = None,
    estimator: EstimatorSpec | Sequence[EstimatorSpec] | None = None,
    ensemble_method: EnsembleMethod = "mean",
    walk_forward: WalkForwardSpec | None = None,
    trading: TradingSpec | None = None,
    costs: CostSpec | None = None,
    periods_per_year: float = 252,
    on_fold: Callable[[int, FoldMetrics], None] | None = None,
) -> TrainResult:
    """Evaluate a model walk-forward on ``frame`` and fit the final model on all labelled rows.

    Defaults: ``default_feature_set()``, a 1-bar regression target, ridge, 5 expanding folds,
    long/short on the sign, 1 bps costs. A list of two or more estimators is an ensemble
    combined by ``ensemble_method``. ``on_fold(i, metrics)`` is called after each fold (for
    progress, tracing or heartbeats); an exception it raises aborts training. Aggregate metrics
    use the test windows only. Raises ``ValueError`` for invalid specs or too little data.
    """
    features = list(features) if features is not None else default_feature_set()
    target = target or TargetSpec()
    template = build_model(estimator or EstimatorSpec(name="ridge"), target.kind, ensemble_method)
    design, names, warnings = build_design(frame, features, target)
    if design.empty:
        raise ValueError("no usable rows: every row lacks features or a known target")
    _, codes = timestamp_codes(design["timestamp"])
    splits = walk_forward_splits(
        int(codes.max()) + 1, walk_forward or WalkForwardSpec(), horizon=target.horizon
    )
    plan = _Plan(
        design=design,
        names=names,
        codes=codes,
        template=template,
        kind=target.kind,
        trading=trading or TradingSpec(),
        costs=costs or CostSpec(),
        periods_per_year=periods_per_year,
    )
    folds, scored, last_model = [], [], template
    for i, split in enumerate(splits):
        fold, test, last_model = _run_fold(plan, i, split)
        folds.append(fold)
        scored.append(test)
        if on_fold is not None:
            on_fold(i, fold)
    return _finish(plan, folds, scored, last_model, warnings)


def _finish(
    plan: _Plan,
    folds: list[FoldMetrics],
    scored: list[pd.DataFrame],
    last_model: Model,
    warnings: list[str],
) -> TrainResult:
    """Aggregate the out-of-sample folds and fit the final model on every labelled row."""
    oos = pd.concat(scored, ignore_index=True)
    result, held = portfolio_result(
        oos, cost_bps=plan.costs.bps, periods_per_year=plan.periods_per_year
    )
    stamps = pd.DatetimeIndex(held.index)
    design, names = plan.design, plan.names
    final = clone(plan.template).fit(design[names].to_numpy(), design["target"].to_numpy())
    importances, method = _importances(final, last_model, scored[-1], names)
    short = [f for f in folds if f.n_test < _MIN_TEST_ROWS]
    warnings = warnings + [f"fold {f.fold}: only {f.n_test} test rows" for f in short]
    return TrainResult(
        kind=plan.kind,
        feature_names=names,
        n_rows=len(design),
        folds=folds,
        prediction=_prediction_metrics(oos, plan.kind),
        trading=result.metrics,
        predictions=oos[_PREDICTION_COLUMNS],
        equity=pd.Series(result.equity, index=stamps, name="equity"),
        model=final,
        importances=importances,
        importance_method=method,
        warnings=warnings,
    )


def predict_latest(
    model: Model,
    frame: pd.DataFrame,
    features: Sequence[FeatureSpec],
    symbols: Sequence[str] | None = None,
) -> dict[str, tuple[datetime, float]]:
    """Score the newest bar of each symbol: ``{symbol: (timestamp, prediction)}``.

    ``prediction`` is a return (regressors) or the probability of an up move (classifiers).
    Raises ``ValueError`` for an unknown symbol or one without enough history for the features.
    """
    names = feature_columns(features)
    feats = compute_features(frame, features)
    latest = feats.groupby("symbol", sort=True).tail(1).set_index("symbol")
    wanted = list(symbols) if symbols is not None else latest.index.tolist()
    unknown = sorted(set(wanted) - set(latest.index))
    if unknown:
        raise ValueError(f"no data for symbols {unknown}")
    rows = latest.loc[wanted]
    incomplete = rows.index[~finite_mask(rows[names])].tolist()
    if incomplete:
        raise ValueError(f"not enough history to compute features for {sorted(incomplete)}")
    scores = predict_scores(model, rows[names].to_numpy())
    return {
        str(symbol): (pd.Timestamp(ts).to_pydatetime(), float(score))
        for symbol, ts, score in zip(rows.index, rows["timestamp"], scores, strict=True)
    }
