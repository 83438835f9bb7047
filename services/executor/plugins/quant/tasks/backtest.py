"""``backtest``: trade a registered model version, or a rule-based strategy, over a dataset
selection with costs; metrics and equity curve stored in the state service and linked to the
version (namespace ``backtests``, key ``<model>.<version>.<task_id>``, so listing the prefix
``<model>.<version>.`` finds every backtest of a version).

A registered model was fitted on all of its training data: a backtest window that overlaps the
version's data range is in-sample and says so in its warnings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from quant.backtest import downsample
from quant.recipe import from_hyperparameters
from quant.specs import CostSpec, TradingSpec
from services.executor.plugins.quant.tasks.common import (
    DataInput,
    cpu,
    load_dataset,
    registry,
    selection,
    settings,
    state,
)
from services.executor.plugins.quant.tasks.jobs import BacktestJob, BacktestOutput, backtest_job
from services.executor.plugins.quant.tasks.records import now, record_trial
from shared.contracts.datasets import DIGEST_PREFIX, DatasetInfo
from shared.contracts.quant import TrialRecord
from shared.contracts.registry import VersionInfo
from shared.settings import ttl_or_none
from shared.tasks import Reject, TaskContext, task

RESULT_POINTS = 250
STORED_POINTS = 500


class BacktestInput(DataInput, frozen=True, kw_only=True):
    """Either ``model`` (a ref: ``name@3``, ``name@production``) or ``strategy``
    (``ma_crossover`` with ``fast``/``slow``, ``momentum`` with ``lookback``; ``mode``
    ``long_short`` or ``long_flat``). ``trading`` and ``costs`` default to the model's own."""

    model: Annotated[str, msgspec.Meta(max_length=200)] = ""
    strategy: Literal["", "ma_crossover", "momentum"] = ""
    params: Annotated[dict[str, int | str], msgspec.Meta(max_length=8)] = {}
    trading: TradingSpec | None = None
    costs: CostSpec | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.model) == bool(self.strategy):
            raise ValueError("give exactly one of model or strategy")


def overlap_warning(version: VersionInfo, out: BacktestOutput, info: DatasetInfo) -> list[str]:
    """In-sample when the backtest reads the data the model was fitted on: the same dataset
    (its bytes, or the name it was trained under) and overlapping dates. Overlapping dates on
    another dataset are only worth a note: other prices are out of sample."""
    spec = version.spec
    if spec.data_start is None or spec.data_end is None:
        return []
    start, end = out.start[:10], out.end[:10]
    trained = (spec.data_start.date().isoformat(), spec.data_end.date().isoformat())
    if not (start <= trained[1] and end >= trained[0]):
        return []
    trained_on = {spec.lineage.data_sha256, spec.tags.get("dataset", "")} - {""}
    if trained_on & {info.sha256, info.name, DIGEST_PREFIX + info.sha256}:
        return [f"in-sample: the window {start}..{end} overlaps the data the model was "
                f"trained on ({trained[0]}..{trained[1]}); use a later window, or the "
                f"walk-forward metrics, for an honest estimate"]
    return [f"dates overlap the training window ({trained[0]}..{trained[1]}) but on another "
            f"dataset ({info.name or info.sha256[:12]}): out of sample unless it holds the same "
            f"prices"]


async def _model_job(ctx: TaskContext, inp: BacktestInput, info: DatasetInfo
                     ) -> tuple[BacktestJob, VersionInfo]:
    version, data = await registry(ctx).download(inp.model)
    try:
        recipe = from_hyperparameters(version.spec.hyperparameters)
    except ValueError as e:
        raise Reject(f"{version.ref}: {e}") from e
    job = BacktestJob(sel=selection(info, inp), trading=inp.trading or recipe.trading,
                      costs=inp.costs or recipe.costs, model=data, recipe=recipe)
    return job, version


def _stored(ctx: TaskContext, inp: BacktestInput, info: DatasetInfo, out: BacktestOutput,
            version: VersionInfo | None, warnings: list[str]) -> dict[str, Any]:
    return {
        "task_id": ctx.task_id, "at": now(), "model": version.ref if version else "",
        "model_sha256": version.artifact.sha256 if version else "",
        "strategy": inp.strategy, "params": inp.params,
        "dataset": {"name": info.name, "sha256": info.sha256}, "symbols": out.symbols,
        "start": out.start, "end": out.end, "frequency": out.frequency,
        "metrics": msgspec.to_builtins(out.metrics), "warnings": warnings,
        "equity": downsample(out.equity, STORED_POINTS),
        # Every bar, not thinned: what a live replay of the same model is compared with.
        "timestamps": [t for t, _ in out.equity], "positions": out.positions,
    }


async def backtest(inp: BacktestInput, ctx: TaskContext) -> dict[str, Any]:
    """The body shared by ``backtest`` and pipeline steps."""
    info, data = await load_dataset(ctx, inp.dataset)
    version: VersionInfo | None = None
    if inp.model:
        job, version = await _model_job(ctx, inp, info)
    else:
        job = BacktestJob(sel=selection(info, inp), trading=inp.trading or TradingSpec(),
                          costs=inp.costs or CostSpec(), strategy=inp.strategy,
                          params=dict(inp.params))
    await ctx.progress(0.1, f"backtesting {inp.model or inp.strategy}")
    out = await cpu(ctx, backtest_job, data, job)
    warnings = out.validation_warnings + (overlap_warning(version, out, info) if version else [])
    group = version.model if version else f"strategy-{inp.strategy}"
    key = f"{version.model}.{version.version}.{ctx.task_id}" if version \
        else f"{group}.{ctx.task_id}"
    cfg = settings()
    await state(ctx).put(cfg.backtests_namespace, key,
                         _stored(ctx, inp, info, out, version, warnings),
                         ttl_s=ttl_or_none(cfg.backtests_ttl_s))
    metrics = {k: float(v) for k, v in msgspec.to_builtins(out.metrics).items()
               if isinstance(v, int | float)}
    params: dict[str, Any] = dict(inp.params) if inp.strategy else {
        "version": version.version if version else 0}
    params |= {"trading_mode": job.trading.mode, "threshold": job.trading.threshold,
               "cost_bps": job.costs.bps}
    await record_trial(ctx, TrialRecord(
        task_id=ctx.task_id, task_type="backtest", group=group, at=now(), params=params,
        metrics=metrics, model=version.ref if version else "", dataset_sha256=info.sha256))
    return {"model": version.ref if version else "", "strategy": inp.strategy,
            "dataset": {"name": info.name, "sha256": info.sha256}, "symbols": out.symbols,
            "start": out.start, "end": out.end, "metrics": metrics, "warnings": warnings,
            "stored": f"{settings().backtests_namespace}/{key}",
            "equity": downsample(out.equity, RESULT_POINTS)}


@task("backtest", input=BacktestInput, timeout_s=1800, max_attempts=2)
async def backtest_task(inp: BacktestInput, ctx: TaskContext) -> dict[str, Any]:
    """Backtest a registered model version or a rule-based strategy, with costs."""
    return await backtest(inp, ctx)
