"""Reading a trial history: is a metric improving, stable or declining over the last runs,
what each parameter does to it, and what to try next (``search`` has the rules).

The search space of a history is not declared anywhere: it is the span of what was tried. A
numeric parameter becomes a range from its smallest to its largest value (log-scaled when it
spans two orders of magnitude or more), anything else a choice of the values seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from quant.search import (
    Choice,
    Param,
    Range,
    SearchSpace,
    Trial,
    history_trend,
    recommend,
)
from quant.specs import Scalar
from shared.contracts.quant import ParameterEffect, TrialRecord, TrialsReply


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def observed_space(records: Sequence[TrialRecord]) -> SearchSpace:
    """The space the records span (see the module docstring)."""
    values: dict[str, list[Scalar]] = {}
    for record in records:
        for name, value in record.params.items():
            values.setdefault(name, []).append(value)
    space: SearchSpace = {}
    for name, seen in sorted(values.items()):
        space[name] = _param(seen)
    return space


def _param(seen: list[Scalar]) -> Param:
    distinct = list(dict.fromkeys(seen))
    if len(distinct) < 2 or not all(_numeric(v) for v in distinct):
        return Choice(values=distinct)
    numbers = [float(v) for v in distinct]  # type: ignore[arg-type]  # _numeric checked
    low, high = min(numbers), max(numbers)
    integer = all(isinstance(v, int) for v in distinct)
    log = low > 0 and high / low >= 100
    return Range(low=low, high=high, integer=integer, log=log)


def _trials(records: Sequence[TrialRecord], metric: str) -> list[Trial]:
    return [Trial(params=dict(r.params), metrics=dict(r.metrics)) for r in records
            if math.isfinite(r.metrics.get(metric, math.nan))]


def analyse(records: Sequence[TrialRecord], *, task_type: str, group: str, metric: str,
            higher_is_better: bool, window: int = 10, parameter: str = "",
            include_runs: bool = True) -> TrialsReply:
    """The reply of ``executor.quant.trials`` for ``records`` (oldest first).

    ``trend`` is ``search.history_trend`` over the metric of the last ``window`` runs;
    ``parameters`` holds the effect of every parameter that varied (only ``parameter``'s when
    one is named); ``recommended`` is a complete parameter set, constant ones included.
    """
    scored = [r for r in records if math.isfinite(r.metrics.get(metric, math.nan))]
    values = [r.metrics[metric] for r in scored]
    trend = history_trend(values, higher_is_better, window=window)
    reply = TrialsReply(task_type=task_type, group=group, metric=metric,
                        higher_is_better=higher_is_better, trials=len(records),
                        trend=trend, values=values[-window:],  # type: ignore[arg-type]
                        runs=list(records) if include_runs else [])
    trials = _trials(records, metric)
    if not trials:
        return msgspec.structs.replace(reply, notes=[f"no trial has a finite {metric!r}"])
    best_trial = max(scored, key=lambda r: r.metrics[metric] * (1 if higher_is_better else -1))
    advice = recommend(trials, observed_space(records), metric=metric,
                       higher_is_better=higher_is_better)
    varied = {n for n, p in observed_space(records).items()
              if not (isinstance(p, Choice) and len(p.values) < 2)}
    effects = {  # a parameter that never changed cannot show an effect: left out
        name: ParameterEffect(parameter=name, verdict=t.verdict, correlation=t.correlation,
                              slope=t.slope, best_value=t.best_value)
        for name, t in advice.trends.items()
        if name in varied and (not parameter or name == parameter)
    }
    return msgspec.structs.replace(reply, best=best_trial, parameters=effects,
                                   recommended=dict(advice.next_params), notes=advice.notes)
