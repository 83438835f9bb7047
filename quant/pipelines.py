"""Declarative pipelines: named step kinds with typed params, wired by ``depends_on``.

A pipeline is data, never code: each step names a kind from ``STEP_KINDS`` (see
``pipeline_steps``) and gives params that are decoded (``msgspec.convert``) against that kind's
schema, with unknown fields refused. ``validate_pipeline`` checks ids, kinds, params, references,
cycles and that each step has the upstream steps it needs; turning a valid pipeline into an
executor workflow is the executor's job (``topological_order`` gives a run order).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from quant.pipeline_steps import (
    MODEL_KINDS,
    STEP_KINDS,
    BacktestParams,
    StepParams,
)

MAX_STEPS = 50
_STEP_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}\Z")


class PipelineError(ValueError):
    """An invalid pipeline; ``problems`` lists every finding, the message joins them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StepSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step: a unique ``id``, a ``kind`` from ``STEP_KINDS``, its params, its inputs."""

    id: str
    kind: str
    params: dict[str, Any] = {}
    depends_on: list[str] = []


class PipelineSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A named DAG of steps."""

    name: str
    steps: list[StepSpec]
    description: str = ""


def decode_pipeline(raw: bytes | dict[str, Any]) -> PipelineSpec:
    """A ``PipelineSpec`` from JSON bytes or JSON-like data; ``ValueError`` if malformed."""
    if isinstance(raw, bytes | bytearray):
        return msgspec.json.decode(raw, type=PipelineSpec)
    return msgspec.convert(raw, PipelineSpec)


def _structure_problems(spec: PipelineSpec) -> list[str]:
    problems: list[str] = []
    if not spec.steps:
        problems.append("a pipeline needs at least one step")
    if len(spec.steps) > MAX_STEPS:
        problems.append(f"a pipeline has at most {MAX_STEPS} steps, got {len(spec.steps)}")
    ids = [step.id for step in spec.steps]
    for step_id in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"duplicate step id {step_id!r}")
    for step in spec.steps:
        if not _STEP_ID.match(step.id):
            problems.append(f"step id {step.id!r} must match {_STEP_ID.pattern}")
        for ref in step.depends_on:
            if ref == step.id:
                problems.append(f"step {step.id!r} depends on itself")
            elif ref not in ids:
                problems.append(f"step {step.id!r} depends on unknown step {ref!r}")
    return problems


def _decode_params(step: StepSpec) -> tuple[StepParams | None, str | None]:
    kind = STEP_KINDS.get(step.kind)
    if kind is None:
        return None, f"step {step.id!r}: unknown kind {step.kind!r}; known: {sorted(STEP_KINDS)}"
    try:
        return msgspec.convert(step.params, kind.params), None
    except msgspec.ValidationError as e:
        return None, f"step {step.id!r} ({step.kind}): bad params: {e}"


def _ancestors(spec: PipelineSpec) -> dict[str, set[str]]:
    """Kinds of all transitive upstream steps of each step (the graph is acyclic here)."""
    by_id = {step.id: step for step in spec.steps}
    kinds: dict[str, set[str]] = {}
    for step_id in topological_order(spec):
        step = by_id[step_id]
        kinds[step_id] = set()
        for ref in step.depends_on:
            kinds[step_id] |= kinds[ref] | {by_id[ref].kind}
    return kinds


def _needs_problems(spec: PipelineSpec, params: dict[str, StepParams]) -> list[str]:
    problems: list[str] = []
    upstream = _ancestors(spec)
    for step in spec.steps:
        needs = list(STEP_KINDS[step.kind].needs)
        step_params = params[step.id]
        if isinstance(step_params, BacktestParams) and step_params.strategy == "predictions":
            needs.append(MODEL_KINDS)
        for group in needs:
            if not upstream[step.id] & group:
                wanted = " or ".join(sorted(group))
                problems.append(f"step {step.id!r} ({step.kind}) needs an upstream {wanted} step")
    return problems


def validate_pipeline(spec: PipelineSpec) -> dict[str, StepParams]:
    """Typed params per step id, or ``PipelineError`` listing every problem found.

    Checks: step count, unique well-formed ids, known kinds, params against each kind's schema,
    references to existing steps, no cycles, and each step's required upstream kinds.
    """
    problems = _structure_problems(spec)
    params: dict[str, StepParams] = {}
    for step in spec.steps:
        decoded, problem = _decode_params(step)
        if problem is not None:
            problems.append(problem)
        elif decoded is not None:
            params[step.id] = decoded
    if problems:
        raise PipelineError(problems)
    topological_order(spec)  # raises on a cycle
    problems = _needs_problems(spec, params)
    if problems:
        raise PipelineError(problems)
    return params


def topological_order(spec: PipelineSpec) -> list[str]:
    """Step ids so that every step comes after its dependencies; ties keep declaration order.

    Raises ``PipelineError`` on unknown references or a cycle (naming the steps in it).
    """
    ids = [step.id for step in spec.steps]
    pending = {step.id: set(step.depends_on) for step in spec.steps}
    unknown = sorted({ref for refs in pending.values() for ref in refs} - set(ids))
    if unknown:
        raise PipelineError([f"unknown step references {unknown}"])
    order: list[str] = []
    while pending:
        ready = [i for i in ids if i in pending and not pending[i] - set(order)]
        if not ready:
            raise PipelineError([f"dependency cycle among steps {sorted(pending)}"])
        order.append(ready[0])
        del pending[ready[0]]
    return order


def _step(step_id: str, kind: str, params: dict[str, Any], *after: str) -> StepSpec:
    return StepSpec(id=step_id, kind=kind, params=params, depends_on=list(after))


_DEMO = {"source": "demo", "symbols": ["AAPL", "MSFT", "IBM"], "start": "2004-01-01"}
_WALK = {"mode": "expanding", "n_splits": 5, "min_train_size": 504}
#: Every template starts here: the demo prices, validated (the later steps depend on "check").
_CHECKED_PRICES = (
    _step("load", "load_data", _DEMO),
    _step("check", "validate", {}, "load"),
)

TEMPLATES: dict[str, PipelineSpec] = {
    "train-and-backtest": PipelineSpec(
        name="train-and-backtest",
        description="Load prices, check them, train a ridge model walk-forward, backtest its "
        "predictions and report risk.",
        steps=[
            *_CHECKED_PRICES,
            _step("features", "indicators", {}, "check"),
            _step(
                "train",
                "model",
                {"estimator": {"name": "ridge"}, "walk_forward": _WALK},
                "features",
            ),
            _step("backtest", "backtest", {"strategy": "predictions"}, "train"),
            _step("risk", "risk_report", {"confidence": 0.95}, "backtest"),
        ],
    ),
    "sweep-and-promote-if-better": PipelineSpec(
        name="sweep-and-promote-if-better",
        description="Random-search a random forest in two narrowing rounds and promote the best "
        "model if its out-of-sample Sharpe beats the current production model.",
        steps=[
            *_CHECKED_PRICES,
            _step(
                "sweep",
                "sweep",
                {
                    "estimator": "random_forest",
                    "space": {
                        "n_estimators": {"type": "choice", "values": [50, 100]},
                        "max_depth": {"type": "range", "low": 2, "high": 8, "integer": True},
                        "min_samples_leaf": {
                            "type": "range",
                            "low": 5,
                            "high": 100,
                            "log": True,
                            "integer": True,
                        },
                    },
                    "strategy": "random",
                    "n_trials": 12,
                    "rounds": 2,
                    "metric": "sharpe",
                    "walk_forward": _WALK,
                    "model_name": "demo-rf",
                },
                "check",
            ),
            _step(
                "promote",
                "promote_if_better",
                {"model_name": "demo-rf", "metric": "sharpe", "min_improvement": 0.05},
                "sweep",
            ),
        ],
    ),
    "ensemble-and-risk": PipelineSpec(
        name="ensemble-and-risk",
        description="Average ridge, extra trees and histogram boosting on a 5-day direction "
        "target, backtest long/flat, report volatility-targeted risk.",
        steps=[
            *_CHECKED_PRICES,
            _step(
                "ensemble",
                "ensemble",
                {
                    "estimators": [
                        {"name": "logistic_regression"},
                        {"name": "extra_trees"},
                        {"name": "hist_gradient_boosting", "hyperparameters": {"max_iter": 100}},
                    ],
                    "method": "mean",
                    "target": {"kind": "direction", "horizon": 5},
                    "walk_forward": _WALK,
                },
                "check",
            ),
            _step(
                "backtest",
                "backtest",
                {"strategy": "predictions", "trading": {"mode": "long_flat", "threshold": 0.02}},
                "ensemble",
            ),
            _step("risk", "risk_report", {"target_vol": 0.15}, "backtest"),
        ],
    ),
    "rule-baseline": PipelineSpec(
        name="rule-baseline",
        description="Backtest a 20/50 moving-average crossover as a baseline, with risk.",
        steps=[
            *_CHECKED_PRICES,
            _step(
                "backtest",
                "backtest",
                {"strategy": "ma_crossover", "fast": 20, "slow": 50},
                "check",
            ),
            _step("risk", "risk_report", {}, "backtest"),
        ],
    ),
}


def template(name: str) -> PipelineSpec:
    """A fresh copy of a shipped template (safe to modify), or ``ValueError`` if unknown."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; available: {sorted(TEMPLATES)}")
    return msgspec.convert(msgspec.to_builtins(TEMPLATES[name]), PipelineSpec)
