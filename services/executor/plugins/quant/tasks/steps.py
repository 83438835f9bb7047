"""``pipeline_step``: one step of a pipeline workflow, run from the catalogue of step kinds
(``pipeline_steps.STEP_KINDS``) and nothing else.

Steps hand a *context* downstream: each result carries ``context`` (the data selection, the
feature set, the model, the backtest's equity curve...), and a step starts from the merge of its
parents' contexts, so a model step three hops below ``load_data`` still knows the data. The data
is pinned by digest at ``load_data``: every step of one run sees the same bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from quant.data import periods_per_year
from quant.pipeline_steps import (
    STEP_KINDS,
    BacktestParams,
    EnsembleParams,
    IndicatorsParams,
    LoadDataParams,
    ModelParams,
    PromoteParams,
    RiskReportParams,
    StepParams,
    SweepParams,
    ValidateParams,
)
from quant.risk import risk_report, vol_target_scale
from services.executor.plugins.quant.tasks.common import (
    DataInput,
    cpu,
    datasets,
    load_dataset,
    registry,
    selection,
)
from services.executor.plugins.quant.tasks.jobs import BacktestJob, backtest_job
from services.executor.plugins.quant.tasks.sweep import SweepInput, promote_if_better, sweep
from services.executor.plugins.quant.tasks.train import TrainInput, train
from services.executor.plugins.quant.tasks.work import describe_issues, validate_job
from shared.contracts.datasets import DEMO_DATASET, DIGEST_PREFIX, ValidationReport
from shared.errors import NotFound
from shared.tasks import Reject, TaskContext, task

Context = dict[str, Any]


class StepInput(msgspec.Struct, frozen=True, kw_only=True):
    """One node of a pipeline workflow (built by ``run_pipeline``)."""

    pipeline: str
    run: str
    step: str
    kind: str
    params: dict[str, Any] = {}

    def __post_init__(self) -> None:
        self.typed()

    def typed(self) -> StepParams:
        kind = STEP_KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown step kind {self.kind!r}; known: {sorted(STEP_KINDS)}")
        return msgspec.convert(self.params, kind.params)


def _data(context: Context, **extra: Any) -> DataInput:
    data = context.get("data")
    if not data:
        raise Reject("no load_data step upstream")
    return DataInput(dataset=data["dataset"], symbols=data.get("symbols"),
                     start=data.get("start"), end=data.get("end"), **extra)


def _model(context: Context) -> dict[str, Any]:
    model = context.get("model")
    if not model:
        raise Reject("no model, ensemble or sweep step upstream")
    return model  # type: ignore[no-any-return]


async def load_data(p: LoadDataParams, ctx: TaskContext, context: Context) -> Context:
    client = datasets(ctx)
    ref = p.dataset if p.source == "dataset" and p.dataset else DEMO_DATASET
    try:
        info = await client.get(ref)
    except NotFound:
        if p.source != "demo":
            raise
        info = await client.seed_demo()
    context["data"] = {"dataset": DIGEST_PREFIX + info.sha256, "name": info.name,
                       "symbols": p.symbols, "start": p.start, "end": p.end}
    return {"dataset": info.name, "sha256": info.sha256, "symbols": p.symbols or info.symbols}


async def validate(p: ValidateParams, ctx: TaskContext, context: Context) -> Context:
    inp = _data(context, max_abs_return=p.max_abs_return, max_gap_factor=p.max_gap_factor)
    info, data = await load_dataset(ctx, inp.dataset)
    raw = await cpu(ctx, validate_job, data, selection(info, inp))
    report = msgspec.convert(raw, ValidationReport)
    if report.errors:
        raise Reject(describe_issues(report, context["data"].get("name") or inp.dataset))
    if p.fail_on_warnings and report.warnings:
        raise Reject(f"{len(report.warnings)} validation warnings and fail_on_warnings: "
                     + "; ".join(f"{w.check} [{w.symbol}]" for w in report.warnings))
    return {"rows": report.rows, "warnings": [f"{w.check} [{w.symbol}]: {w.count}"
                                              for w in report.warnings]}


async def indicators(p: IndicatorsParams, ctx: TaskContext, context: Context) -> Context:
    context["features"] = msgspec.to_builtins(p.features)
    return {"features": [f.stem() for f in p.features]}


def _train_input(p: ModelParams | EnsembleParams, context: Context, name: str) -> TrainInput:
    base = msgspec.to_builtins(_data(context))
    features = p.features if p.features is not None else context.get("features")
    estimators: dict[str, Any] = (
        {"estimator": msgspec.to_builtins(p.estimator)} if isinstance(p, ModelParams)
        else {"estimators": msgspec.to_builtins(p.estimators), "ensemble_method": p.method})
    return msgspec.convert({**base, **estimators, "features": features,
                            "target": msgspec.to_builtins(p.target),
                            "walk_forward": msgspec.to_builtins(p.walk_forward),
                            "trading": msgspec.to_builtins(p.trading),
                            "costs": msgspec.to_builtins(p.costs),
                            "model_name": p.model_name or name}, TrainInput)


async def model(p: ModelParams | EnsembleParams, ctx: TaskContext, context: Context
                ) -> Context:
    inp = _train_input(p, context, context["_pipeline"])
    result = await train(inp, ctx)
    context["model"] = {"name": result["model"], "version": result["version"],
                        "ref": result["ref"], "evaluation": result["evaluation"],
                        "kind": inp.target.kind, "metrics": result["metrics"]}
    return {k: result[k] for k in ("ref", "evaluation", "metrics", "data_start", "data_end")}


async def run_sweep(p: SweepParams, ctx: TaskContext, context: Context) -> Context:
    base = msgspec.to_builtins(_data(context))
    features = p.features if p.features is not None else context.get("features")
    body = msgspec.to_builtins(p) | base | {"features": features,
                                            "model_name": p.model_name or context["_pipeline"]}
    result = await sweep(msgspec.convert(body, SweepInput), ctx)
    best = result.get("best")
    if not best:
        raise Reject(f"sweep: no trial succeeded ({result['failed']} failed)")
    context["model"] = {"name": result["model"], "version": best["version"], "ref": best["ref"],
                        "kind": p.target.kind, "metrics": best["metrics"],
                        "evaluation": (await registry(ctx).get(best["ref"])).spec.tags.get(
                            "evaluation", "")}
    return {k: result.get(k) for k in ("model", "best", "trends", "recommended", "succeeded")}


async def backtest(p: BacktestParams, ctx: TaskContext, context: Context) -> Context:
    inp = _data(context)
    info, data = await load_dataset(ctx, inp.dataset)
    sel = selection(info, inp)
    if p.strategy == "predictions":
        m = _model(context)
        if not m.get("evaluation"):
            raise Reject(f"{m['ref']} has no stored evaluation to backtest")
        _, evaluation = await registry(ctx).download(m["evaluation"])
        job = BacktestJob(sel=sel, trading=p.trading, costs=p.costs, evaluation=evaluation,
                          kind=m["kind"])
    else:
        params = {"fast": p.fast, "slow": p.slow} if p.strategy == "ma_crossover" \
            else {"lookback": p.lookback}
        job = BacktestJob(sel=sel, trading=p.trading, costs=p.costs, strategy=p.strategy,
                          params=params)
    out = await cpu(ctx, backtest_job, data, job)
    context["backtest"] = {"equity": out.equity, "frequency": out.frequency}
    return {"metrics": msgspec.to_builtins(out.metrics), "start": out.start, "end": out.end,
            "warnings": out.validation_warnings}


def _returns(equity: list[list[Any]]) -> np.ndarray:
    values = np.array([1.0] + [float(v) for _, v in equity], dtype="float64")
    returns: np.ndarray = values[1:] / values[:-1] - 1.0
    return returns


async def risk(p: RiskReportParams, ctx: TaskContext, context: Context) -> Context:
    source = context.get("backtest")
    if source is None:
        m = _model(context)
        _, evaluation = await registry(ctx).download(m["evaluation"])
        source = {"equity": msgspec.json.decode(evaluation)["equity"], "frequency": "1d"}
    returns, per_year = _returns(source["equity"]), periods_per_year(source["frequency"])
    out: Context = {"risk": msgspec.to_builtins(risk_report(
        returns, confidence=p.confidence, periods_per_year=per_year))}
    if p.target_vol is not None:
        scale = vol_target_scale(returns, target_vol=p.target_vol, lookback=p.vol_lookback,
                                 max_leverage=p.max_leverage, periods_per_year=per_year)
        # The scale known at t's close applies to the return from t to t+1.
        scaled = returns[1:] * scale[:-1]
        out["vol_targeted"] = msgspec.to_builtins(risk_report(
            scaled, confidence=p.confidence, periods_per_year=per_year))
        out["current_scale"] = float(scale[-1]) if scale.size else 0.0
    return out


async def promote(p: PromoteParams, ctx: TaskContext, context: Context) -> Context:
    m = _model(context)
    if m["name"] != p.model_name:
        raise Reject(f"the upstream model is {m['name']!r}, not {p.model_name!r}")
    value = m["metrics"].get(p.metric)
    if value is None:
        raise Reject(f"{m['ref']} has no metric {p.metric!r}")
    if p.stage == "staging":
        change = await registry(ctx).set_alias(p.model_name, "staging", m["version"],
                                               reason=f"pipeline {context['_pipeline']}")
        return {"promoted": True, "alias": "staging", "to": change.version}
    return await promote_if_better(ctx, p.model_name, m["version"], float(value),
                                   metric=p.metric, hib=p.higher_is_better,
                                   min_improvement=p.min_improvement,
                                   why=f"pipeline {context['_pipeline']}")


STEPS = {"load_data": load_data, "validate": validate, "indicators": indicators,
         "model": model, "ensemble": model, "sweep": run_sweep, "backtest": backtest,
         "risk_report": risk, "promote_if_better": promote}


@task("pipeline_step", input=StepInput, timeout_s=6 * 3600, max_attempts=2)
async def pipeline_step(inp: StepInput, ctx: TaskContext) -> dict[str, Any]:
    """Run one step of a pipeline workflow (see run_pipeline)."""
    context: Context = {}
    # Only other steps' results make the context: any other parent (a noop) could forge it.
    for result in (await ctx.parent_results(of_type="pipeline_step")).values():
        if isinstance(result, dict):
            context |= result.get("context", {})
    context["_pipeline"] = inp.pipeline
    summary = await STEPS[inp.kind](inp.typed(), ctx, context)  # type: ignore[operator]
    return {"step": inp.step, "kind": inp.kind, "summary": summary, "context": context}
