"""Training and backtest jobs, run in worker processes (see ``work`` for the conventions).

A training job returns the fitted model as skops bytes and its out-of-sample evaluation as JSON
bytes, both built in the worker: the executor's event loop only ships bytes to the registry,
so a sweep's CPU work scales with worker processes and not with the loop.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from quant.backtest import (
    STRATEGIES,
    BacktestResult,
    backtest_positions,
    backtest_predictions,
)
from quant.data import finite_mask
from quant.estimators import Model, dump_model, load_model, predict_scores
from quant.features import compute_features, feature_columns
from quant.performance import TradingMetrics
from quant.recipe import Recipe, flat_metrics
from quant.specs import CostSpec, TargetKind, TradingSpec
from quant.training import FoldMetrics, TrainResult, TrainSummary, train_walk_forward
from services.executor.plugins.quant.tasks.work import (
    ROW,
    DataErrors,
    Selection,
    annualisation,
    checked,
    describe_issues,
    parsed,
    select,
    validate,
    warning_lines,
)
from shared.tasks import report_progress

_encode = msgspec.json.Encoder().encode


class TrainJob(msgspec.Struct, frozen=True, kw_only=True):
    """``progress=False`` for a training inside another task (a sweep's own trial), whose
    record must keep showing the outer task's progress."""

    sel: Selection
    recipe: Recipe
    evaluation: bool = True
    progress: bool = True


class TrainOutput(msgspec.Struct, frozen=True, kw_only=True):
    """What the task registers: model bytes, evaluation JSON, and the facts for metadata."""

    summary: TrainSummary
    metrics: dict[str, float]
    model: bytes
    evaluation: bytes
    validation_warnings: list[str]
    data_start: str
    data_end: str
    rows: int
    symbols: list[str]
    frequency: str
    #: ``(name, start_ns, end_ns)`` of each step, timed in the worker process (which exports no
    #: spans itself): the task turns them into child spans of its run.
    steps: list[tuple[str, int, int]] = []


def evaluation_json(result: TrainResult, warnings: list[str]) -> bytes:
    """The companion artifact: importances, folds, the out-of-sample equity curve and every
    out-of-sample prediction, column by column."""
    preds = result.predictions
    columns: dict[str, list[Any]] = {
        "timestamp": [t.isoformat() for t in preds["timestamp"]],
        "symbol": preds["symbol"].astype(str).tolist(),
    }
    for name in ("fold", "prediction", "signal", "position", "target", "fwd_return",
                 "next_return"):
        columns[name] = preds[name].tolist()
    return _encode({
        "kind": result.kind, "features": result.feature_names,
        "importances": result.importances, "importance_method": result.importance_method,
        "folds": result.folds, "warnings": warnings,
        "equity": [(t.isoformat(), float(v)) for t, v in result.equity.items()],
        "predictions": columns,
    })


def train_job(data: bytes, job: TrainJob) -> TrainOutput:
    """Validate the selection, train walk-forward, serialise the model and its evaluation."""
    steps: list[tuple[str, int, int]] = []
    with threadpool_limits(1):
        started = time.time_ns()
        frame, report = checked(data, job.sel)
        steps.append(("data validation", started, time.time_ns()))
        frequency, per_year = annualisation(frame)
        recipe, n = job.recipe, job.recipe.walk_forward.n_splits
        mark = [time.time_ns()]

        def on_fold(i: int, fold: FoldMetrics) -> None:
            steps.append((f"walk-forward fold {i + 1}/{n}", mark[0], now := time.time_ns()))
            mark[0] = now
            if job.progress:
                report_progress((i + 1) / (n + 1), f"fold {i + 1}/{n}: sharpe "
                                f"{fold.trading.sharpe:.2f}, ic {fold.prediction.ic:.3f}")

        result = train_walk_forward(
            frame.drop(columns=[ROW]), features=recipe.features, target=recipe.target,
            estimator=recipe.estimators, ensemble_method=recipe.ensemble_method,
            walk_forward=recipe.walk_forward, trading=recipe.trading, costs=recipe.costs,
            periods_per_year=per_year, on_fold=on_fold)
        steps.append(("final model fit", mark[0], time.time_ns()))
        warnings = warning_lines(report)
        mark[0] = time.time_ns()
        model = dump_model(result.model)
        steps.append(("model serialisation (skops)", mark[0], time.time_ns()))
        evaluation = evaluation_json(result, warnings + result.warnings) if job.evaluation \
            else b""
        if job.progress:
            report_progress(1.0, "trained")
        return TrainOutput(
            summary=result.summary(), metrics=flat_metrics(result.prediction, result.trading),
            model=model, evaluation=evaluation, validation_warnings=warnings,
            data_start=frame["timestamp"].min().isoformat(),
            data_end=frame["timestamp"].max().isoformat(), rows=len(frame),
            symbols=sorted(frame["symbol"].unique().tolist()), frequency=frequency,
            steps=steps)


class BacktestJob(msgspec.Struct, frozen=True, kw_only=True):
    """One of: ``model`` (skops bytes) with its ``recipe``; ``evaluation`` (a training's JSON,
    whose out-of-sample predictions are traded); or a rule ``strategy`` with ``params``."""

    sel: Selection
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()
    model: bytes = b""
    recipe: Recipe | None = None
    evaluation: bytes = b""
    kind: TargetKind = "regression"
    strategy: str = ""
    params: dict[str, Any] = {}


class BacktestOutput(msgspec.Struct, frozen=True, kw_only=True):
    metrics: TradingMetrics
    equity: list[tuple[str, float]]
    symbols: list[str]
    start: str
    end: str
    frequency: str
    validation_warnings: list[str] = []
    positions: dict[str, list[float]] = {}  # per bar, aligned with ``equity``


def model_predictions(frame: pd.DataFrame, model: Model, recipe: Recipe) -> pd.DataFrame:
    """``timestamp, symbol, prediction`` for every bar whose features exist."""
    names = feature_columns(recipe.features)
    feats = compute_features(frame, recipe.features)
    ok = finite_mask(feats[names])
    rows = feats[ok]
    scores = predict_scores(model, rows[names].to_numpy(dtype="float64"))
    return pd.DataFrame({"timestamp": rows["timestamp"].to_numpy(),
                         "symbol": rows["symbol"].to_numpy(), "prediction": scores})


def _evaluation_predictions(data: bytes) -> pd.DataFrame:
    columns = msgspec.json.decode(data)["predictions"]
    return pd.DataFrame({"timestamp": pd.to_datetime(columns["timestamp"]),
                         "symbol": columns["symbol"],
                         "prediction": np.asarray(columns["prediction"], dtype="float64")})


def _run(job: BacktestJob, history: pd.DataFrame, window: pd.DataFrame,
         per_year: float) -> BacktestResult:
    start = window["timestamp"].min()
    if job.strategy:
        strategy = STRATEGIES.get(job.strategy)
        if strategy is None:
            raise ValueError(f"unknown strategy {job.strategy!r}; known: {sorted(STRATEGIES)}")
        try:
            positions = strategy(history, **job.params)
        except TypeError as e:
            raise ValueError(f"bad parameters for strategy {job.strategy!r}: {e}") from e
        positions = positions[positions["timestamp"] >= start]
        return backtest_positions(window, positions, costs=job.costs, periods_per_year=per_year)
    if job.model and job.recipe is not None:
        predictions = model_predictions(history, load_model(job.model), job.recipe)
        kind = job.recipe.target.kind
    elif job.evaluation:
        predictions, kind = _evaluation_predictions(job.evaluation), job.kind
    else:
        raise ValueError("a backtest needs a model, a training's evaluation or a strategy")
    predictions = predictions[predictions["timestamp"] >= start]
    return backtest_predictions(window, predictions, kind=kind, trading=job.trading,
                                costs=job.costs, periods_per_year=per_year)


def backtest_job(data: bytes, job: BacktestJob) -> BacktestOutput:
    """Trade the selection's window; features and rules warm up on the bars before it."""
    with threadpool_limits(1):
        frame = parsed(job.sel.sha256, data, job.sel.format)
        history = select(frame, job.sel, from_start=False)
        window = select(frame, job.sel)
        report = validate(window, job.sel)
        if report.errors:
            raise DataErrors(describe_issues(report, job.sel.label or job.sel.sha256[:12]))
        frequency, per_year = annualisation(window)
        result = _run(job, history.drop(columns=[ROW]), window.drop(columns=[ROW]), per_year)
        report_progress(1.0, "backtested")
        return BacktestOutput(metrics=result.metrics, equity=result.equity,
                              symbols=result.symbols, start=result.equity[0][0],
                              end=result.equity[-1][0], frequency=frequency,
                              positions=result.positions,
                              validation_warnings=warning_lines(report))
