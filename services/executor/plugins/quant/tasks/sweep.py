"""``sweep``: a hyperparameter search fanned out as child ``train_model`` tasks.

Round 1 tries ``n_trials`` points of the declared space (a grid, or seeded random draws); each
later round narrows the space around the ``top_k`` best trials so far (``search.narrow``) and
tries new points there. Every trial is a registered version of ``model_name`` tagged with the
sweep and trial, and a trial record; the sweep's result lists them all with the best, each
parameter's trend and the recommended next parameters. With ``promote``, the best version
becomes ``production`` if it beats the current production version on ``metric`` by more than
``min_improvement`` (or if there is none).

Children run wherever a worker is free, on any executor. The sweep does not sit idle in its
slot: of each round's points it trains the last one itself, once every child has been taken by
an executor. Executors take tasks ahead of their workers (a slot per task, not per worker), so
when the queue runs dry one executor may still hold a trial or two while another has nothing:
the sweep's own trial lands on the idle side. Child submissions are keyed
(``r<round>-t<trial>``) and the sweep's own trials are keyed ``<sweep id>-r<round>-t<trial>``,
so a redelivered sweep finds its children and registrations again. Once done, only the best
``keep_best`` trials keep their registered versions (``sweep_prune``).
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, Literal

import msgspec

from quant.estimators import hyperparameter_names
from quant.pipeline_steps import METRIC_NAMES
from quant.recipe import higher_is_better
from quant.search import (
    Choice,
    Range,
    SearchSpace,
    Trial,
    grid,
    narrow,
    random_trials,
    recommend,
)
from quant.specs import (
    CostSpec,
    FeatureSpec,
    Scalar,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)
from services.executor.plugins.quant.tasks.common import (
    DataInput,
    ModelName,
    load_dataset,
    registry,
    settings,
)
from services.executor.plugins.quant.tasks.sweep_prune import prune_trials
from services.executor.plugins.quant.tasks.train import TrainInput, default_model_name, train
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskRecord, TaskStatus
from shared.errors import NotFound
from shared.tasks import Reject, TaskContext, task

SHOWN_METRICS = ("sharpe", "ic", "direction_accuracy", "rmse", "total_return", "max_drawdown")


class SweepInput(DataInput, frozen=True, kw_only=True):
    """``estimator`` with fixed ``base`` hyperparameters, searched over ``space``."""

    estimator: str = "ridge"
    base: dict[str, Scalar] = {}
    space: dict[str, Choice | Range]
    strategy: Literal["grid", "random"] = "random"
    n_trials: Annotated[int, msgspec.Meta(ge=1, le=500)] = 16
    rounds: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    top_k: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    metric: str = "sharpe"
    higher_is_better: bool | None = None
    seed: int = 0
    features: Annotated[list[FeatureSpec], msgspec.Meta(max_length=64)] | None = None
    target: TargetSpec = TargetSpec()
    walk_forward: WalkForwardSpec = WalkForwardSpec()
    trading: TradingSpec = TradingSpec()
    costs: CostSpec = CostSpec()
    model_name: ModelName = ""
    evaluation: bool = True
    promote: bool = False
    min_improvement: float = 0.0
    trial_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] | None = None
    #: Registered versions kept once the sweep is done: its best N by ``metric``, plus any an
    #: alias points to; None: ``QUANTOPS_QUANT_SWEEP_KEEP_BEST``; 0: keep every trial's version.
    keep_best: Annotated[int, msgspec.Meta(ge=0, le=500)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        allowed = hyperparameter_names(self.estimator, self.target.kind)
        unknown = sorted((set(self.space) | set(self.base)) - set(allowed))
        if unknown:
            raise ValueError(f"estimator {self.estimator!r} has no hyperparameters {unknown}")
        if not self.space:
            raise ValueError("a sweep needs a non-empty space")
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"unknown metric {self.metric!r}; known: {sorted(METRIC_NAMES)}")

    def better_high(self) -> bool:
        return self.higher_is_better if self.higher_is_better is not None \
            else higher_is_better(self.metric)


def child_input(inp: SweepInput, params: dict[str, Scalar], model: str, sweep_id: str,
                label: str) -> dict[str, Any]:
    """The ``train_model`` input of one trial."""
    body = msgspec.to_builtins(inp)
    keep = ("dataset", "symbols", "start", "end", "max_abs_return", "max_gap_factor",
            "features", "target", "walk_forward", "trading", "costs", "evaluation")
    child = {k: body[k] for k in keep if body.get(k) is not None}
    child["estimator"] = {"name": inp.estimator, "hyperparameters": {**inp.base, **params}}
    child |= {"model_name": model, "register": True,
              "tags": {"sweep": sweep_id, "trial": label}}
    return child


def candidates(inp: SweepInput, space: SearchSpace, round_: int,
               tried: list[dict[str, Scalar]]) -> list[dict[str, Scalar]]:
    """New points for one round (never a point already tried)."""
    if inp.strategy == "grid":
        points = grid(space, inp.n_trials)
    else:
        points = random_trials(space, inp.n_trials, inp.seed + 1000 * round_)
    fresh: list[dict[str, Scalar]] = []
    for p in points:
        if p not in tried and p not in fresh:
            fresh.append(p)
    return fresh


def trial_entry(rec: TaskRecord, params: dict[str, Scalar], label: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"trial": label, "task_id": rec.id, "status": str(rec.status),
                             "params": params}
    if rec.status == TaskStatus.SUCCEEDED and isinstance(rec.result, dict):
        metrics = rec.result.get("metrics", {})
        entry |= {"ref": rec.result.get("ref", ""),
                  "version": rec.result.get("version", 0),
                  "evaluation": rec.result.get("evaluation", ""),
                  "metrics": {k: metrics[k] for k in SHOWN_METRICS if k in metrics},
                  "all_metrics": metrics}
    elif rec.error is not None:
        entry["error"] = rec.error.message[:500]
    return entry


async def all_taken(ctx: TaskContext, ids: list[str], poll_s: float = 0.25) -> None:
    """Until no child waits in the queue: each has been started by some executor (or ended)."""
    client = ExecutorClient(ctx.bus, headers=ctx.headers())
    waiting = list(ids)
    while waiting:
        records = await asyncio.gather(*(client.get(i) for i in waiting))
        waiting = [r.id for r in records if r.status == TaskStatus.QUEUED]
        if waiting:
            await asyncio.sleep(poll_s)


async def run_here(ctx: TaskContext, inp: SweepInput, params: dict[str, Scalar], model: str,
                   label: str, key: str) -> dict[str, Any]:
    """One trial trained inside the sweep task (its registrations keyed by ``key``)."""
    body = msgspec.convert(child_input(inp, params, model, ctx.task_id, label), TrainInput)
    entry: dict[str, Any] = {"trial": label, "task_id": key, "params": params,
                             "ran_in": "sweep"}
    try:
        result = await train(body, ctx, key=key)
    except Reject as e:
        return entry | {"status": "failed", "error": e.reason[:500]}
    metrics = result["metrics"]
    return entry | {"status": "succeeded", "ref": result["ref"], "version": result["version"],
                    "evaluation": result.get("evaluation", ""),
                    "metrics": {k: metrics[k] for k in SHOWN_METRICS if k in metrics},
                    "all_metrics": metrics}


async def run_round(ctx: TaskContext, inp: SweepInput, points: list[dict[str, Scalar]],
                    model: str, round_: int) -> list[dict[str, Any]]:
    """Children for every point but the last, which the sweep trains itself once every child
    has been taken by an executor: the sweep's own slot does a trial's work instead of idling,
    and it does it when the executors' workers run out of queued trials (the tail)."""
    labels = [f"{round_ + 1}.{i + 1}" for i in range(len(points))]
    mine = len(points) > 1
    children = points[:-1] if mine else points
    ids = [await ctx.submit_child("train_model",
                                  child_input(inp, p, model, ctx.task_id, labels[i]),
                                  key=f"r{round_}-t{i}", timeout_s=inp.trial_timeout_s)
           for i, p in enumerate(children)]
    own: list[dict[str, Any]] = []
    if mine:
        await all_taken(ctx, ids)
        own = [await run_here(ctx, inp, points[-1], model, labels[-1],
                              f"{ctx.task_id}-r{round_}-t{len(children)}")]
    records = await ctx.wait_children(ids)
    return [trial_entry(rec, p, lb) for rec, p, lb in zip(records, children, labels,
                                                           strict=False)] + own


async def run_rounds(inp: SweepInput, ctx: TaskContext, model: str) -> list[dict[str, Any]]:
    space: SearchSpace = dict(inp.space)
    tried: list[dict[str, Scalar]] = []
    entries: list[dict[str, Any]] = []
    hib = inp.better_high()
    for r in range(inp.rounds):
        points = candidates(inp, space, r, tried)
        if not points:
            break
        await ctx.progress(r / inp.rounds, f"round {r + 1}/{inp.rounds}: {len(points)} trials")
        entries += await run_round(ctx, inp, points, model, r)
        tried += points
        scored = _trials(entries, inp.metric)
        if r + 1 < inp.rounds and scored:
            space = narrow(space, scored, metric=inp.metric, higher_is_better=hib,
                           top_k=inp.top_k)
    return entries


def _trials(entries: list[dict[str, Any]], metric: str) -> list[Trial]:
    return [Trial(params=e["params"], metrics=e["all_metrics"]) for e in entries
            if math.isfinite(e.get("all_metrics", {}).get(metric, math.nan))]


async def promote_if_better(ctx: TaskContext, model: str, version: int, value: float, *,
                            metric: str, hib: bool, min_improvement: float, why: str
                            ) -> dict[str, Any]:
    """Move ``production`` to ``version`` if it beats the current one on ``metric``."""
    client = registry(ctx)
    try:
        current = await client.get(f"{model}@production")
    except NotFound:
        current = None
    if current is not None and current.version == version:
        return {"promoted": False, "reason": f"{model}@{version} is already production"}
    old = current.spec.metrics.get(metric) if current is not None else None
    gain = None if old is None else (value - old) * (1 if hib else -1)
    if gain is not None and gain <= min_improvement:
        return {"promoted": False, "production": current.ref if current else "",
                "reason": f"{metric} {value:.4g} does not beat production's {old:.4g} by more "
                          f"than {min_improvement:g}"}
    reason = f"{why}: {metric} {value:.4g}" + (f" vs {old:.4g}" if old is not None else
                                               " (no production version before)")
    change = await client.promote(model, version, reason=reason)
    return {"promoted": True, "from": change.previous, "to": change.version, "reason": reason}


async def sweep(inp: SweepInput, ctx: TaskContext) -> dict[str, Any]:
    info, _ = await load_dataset(ctx, inp.dataset)
    model = inp.model_name or default_model_name([inp.estimator], info)
    entries = await run_rounds(inp, ctx, model)
    trials, hib = _trials(entries, inp.metric), inp.better_high()
    out: dict[str, Any] = {"model": model, "metric": inp.metric, "higher_is_better": hib,
                           "trials": [{k: v for k, v in e.items() if k != "all_metrics"}
                                      for e in entries],
                           "succeeded": len(trials), "failed": len(entries) - len(trials)}
    if not trials:
        return out | {"best": None, "promotion": None}
    advice = recommend(trials, dict(inp.space), metric=inp.metric, higher_is_better=hib,
                       top_k=inp.top_k, seed=inp.seed)
    best = next(e for e in entries if e.get("all_metrics", {}).get(inp.metric) ==
                advice.best_value and e["params"] == advice.best_params)
    out |= {"best": {k: v for k, v in best.items() if k != "all_metrics"},
            "trends": {k: msgspec.to_builtins(v) for k, v in advice.trends.items()},
            "recommended": advice.next_params, "notes": advice.notes}
    promotion = None
    if inp.promote:
        promotion = await promote_if_better(
            ctx, model, best["version"], advice.best_value, metric=inp.metric, hib=hib,
            min_improvement=inp.min_improvement, why=f"sweep {ctx.task_id} best trial "
                                                     f"{best['trial']}")
    keep = settings().sweep_keep_best if inp.keep_best is None else inp.keep_best
    pruned = await prune_trials(ctx, model, entries, metric=inp.metric, hib=hib, keep=keep)
    out["trials"] = [{k: v for k, v in e.items() if k != "all_metrics"} for e in entries]
    return out | {"promotion": promotion, "pruned": pruned}


@task("sweep", input=SweepInput, timeout_s=6 * 3600, max_attempts=2)
async def sweep_task(inp: SweepInput, ctx: TaskContext) -> dict[str, Any]:
    """Search hyperparameters with child train_model tasks; report best, trends, advice."""
    return await sweep(inp, ctx)
