"""``train_model``: walk-forward training on a dataset, registered with its evaluation.

Steps: fetch the dataset (cached by digest) -> in a worker process: select, validate (errors
refuse the run with the offending rows), train walk-forward reporting each fold as progress,
serialise -> register the evaluation and the model (idempotent on the task id) -> record the
trial. Several ``estimators`` make an ensemble (mean or stacked), registered as one version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from quant.estimators import hyperparameter_names
from quant.features import default_feature_set
from quant.recipe import Recipe, trial_params
from quant.specs import (
    CostSpec,
    EstimatorSpec,
    FeatureSpec,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)
from services.executor.plugins.quant.tasks.common import (
    DataInput,
    ModelName,
    cpu,
    load_dataset,
    selection,
)
from services.executor.plugins.quant.tasks.jobs import TrainJob, TrainOutput, train_job
from services.executor.plugins.quant.tasks.records import now, record_trial, register_trained
from shared import telemetry
from shared.contracts.datasets import DatasetInfo
from shared.contracts.quant import TrialRecord
from shared.tasks import TaskContext, task

Tags = Annotated[dict[str, Annotated[str, msgspec.Meta(max_length=256)]],
                 msgspec.Meta(max_length=32)]


class TrainInput(DataInput, frozen=True, kw_only=True):
    """``train_model`` input. ``estimator`` or two or more ``estimators`` (an ensemble combined
    by ``ensemble_method``); ``features`` default to ``features.default_feature_set()``.
    ``model_name`` defaults to ``<dataset>-<estimator>``; ``register=false`` only evaluates."""

    features: Annotated[list[FeatureSpec], msgspec.Meta(max_length=64)] | None = None
    target: TargetSpec = TargetSpec()
    estimator: EstimatorSpec | None = None
    estimators: Annotated[list[EstimatorSpec], msgspec.Meta(max_length=8)] = []
    ensemble_method: Literal["mean", "stacked"] = "mean"
    walk_forward: WalkForwardSpec = WalkForwardSpec()
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()
    model_name: ModelName = ""
    register: bool = True
    evaluation: bool = True
    tags: Tags = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        chosen = self.chosen()
        for spec in chosen:
            allowed = hyperparameter_names(spec.name, self.target.kind)  # raises for the kind
            unknown = sorted(set(spec.hyperparameters) - set(allowed))
            if unknown:
                raise ValueError(f"estimator {spec.name!r} has no hyperparameters {unknown}")
        if self.estimator is not None and self.estimators:
            raise ValueError("give either estimator or estimators, not both")

    def chosen(self) -> list[EstimatorSpec]:
        """The estimators to fit; without any, a ridge for returns and a logistic regression
        for a ``direction`` target (ridge is a regressor and cannot classify)."""
        if self.estimators:
            return list(self.estimators)
        default = "logistic_regression" if self.target.kind == "direction" else "ridge"
        return [self.estimator or EstimatorSpec(name=default)]

    def recipe(self) -> Recipe:
        return Recipe(features=list(self.features or default_feature_set()), target=self.target,
                      estimators=self.chosen(), ensemble_method=self.ensemble_method,
                      walk_forward=self.walk_forward, trading=self.trading, costs=self.costs)


def default_model_name(estimators: list[str], info: DatasetInfo) -> str:
    """``<dataset>-<estimator>[-<estimator>...]``: where a model goes without a name."""
    names = "-".join(estimators).replace("_", "-")
    base = (info.name or "dataset").replace("_", "-")
    return f"{base}-{names}"[:100].strip(".-_")


def result_of(out: TrainOutput, info: DatasetInfo, *, model: str = "", version: int = 0,
              evaluation: str = "") -> dict[str, Any]:
    """The task's result: small (metrics, folds, importances), everything else is in the
    registry under ``ref`` and ``evaluation``."""
    s = out.summary
    return {
        "model": model, "version": version, "ref": f"{model}@{version}" if model else "",
        "evaluation": evaluation,
        "dataset": {"name": info.name, "sha256": info.sha256},
        "data_start": out.data_start, "data_end": out.data_end, "rows": out.rows,
        "symbols": out.symbols, "frequency": out.frequency, "metrics": out.metrics,
        "features": s.features, "importances": s.importances,
        "importance_method": s.importance_method,
        "folds": [{"fold": f.fold, "train_start": f.train_start, "train_end": f.train_end,
                   "test_start": f.test_start, "test_end": f.test_end,
                   "n_train": f.n_train, "n_test": f.n_test, "sharpe": f.trading.sharpe,
                   "ic": f.prediction.ic, "direction_accuracy": f.prediction.direction_accuracy}
                  for f in s.folds],
        "validation_warnings": out.validation_warnings, "warnings": s.warnings,
    }


async def train(inp: TrainInput, ctx: TaskContext, *, key: str = "") -> dict[str, Any]:
    """The body shared by ``train_model``, sweeps and pipeline steps. ``key`` names a training
    run inside another task (a sweep's own trial): it keys the registrations and the trial
    record instead of the task id, which stays the lineage."""
    info, data = await load_dataset(ctx, inp.dataset)
    recipe = inp.recipe()
    if not key:
        await ctx.progress(0.0, f"training {recipe.estimator_label()} on "
                                f"{info.name or info.ref}")
    job = TrainJob(sel=selection(info, inp), recipe=recipe,
                   evaluation=inp.evaluation and inp.register, progress=not key)
    out = await cpu(ctx, train_job, data, job)
    for name, start_ns, end_ns in out.steps:
        telemetry.record_span(name, start_ns, end_ns, {"quantops.task_id": ctx.task_id,
                                                       "quantops.dataset": info.sha256})
    model = inp.model_name or default_model_name([e.name for e in inp.chosen()], info)
    result = result_of(out, info)
    if inp.register:
        version, evaluation = await register_trained(ctx, model, out, recipe, info,
                                                     dict(inp.tags), key=key)
        result = result_of(out, info, model=model, version=version.version,
                           evaluation=evaluation.ref if evaluation else "")
    await record_trial(ctx, TrialRecord(
        task_id=key or ctx.task_id, task_type="train_model", group=model, at=now(),
        params=trial_params(recipe), metrics=out.metrics, model=result["ref"],
        dataset_sha256=info.sha256, sweep=inp.tags.get("sweep", "")))
    return result


@task("train_model", input=TrainInput, timeout_s=3600, max_attempts=2)
async def train_model(inp: TrainInput, ctx: TaskContext) -> dict[str, Any]:
    """Train a model walk-forward on a dataset; register it with its out-of-sample evaluation."""
    return await train(inp, ctx)
