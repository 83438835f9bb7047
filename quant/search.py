"""Hyperparameter search spaces for sweeps: grids, random trials, narrowing, trends, advice.

A space maps parameter names to a ``Choice`` (explicit values) or a ``Range`` (``low..high``,
optionally log-scaled and/or integer). Everything is deterministic: grids are enumerated in
sorted parameter order and random trials come from a seeded generator.

Successive rounds: run trials, ``narrow`` the space around the ``top_k`` best, run again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from scipy.stats import rankdata

from quant.specs import Scalar

TREND_MIN_CORRELATION = 0.3  # |Spearman rho| below this is "no clear effect"
TREND_MIN_TRIALS = 4


class Choice(msgspec.Struct, frozen=True, kw_only=True, tag="choice", tag_field="type"):
    """Pick one of ``values`` (at least one)."""

    values: list[Scalar]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a choice needs at least one value")


class Range(msgspec.Struct, frozen=True, kw_only=True, tag="range", tag_field="type"):
    """A numeric interval ``[low, high]``; ``log`` samples evenly in log space (low > 0);
    ``integer`` rounds to whole numbers."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a range needs finite low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")


Param = Choice | Range
SearchSpace = dict[str, Param]


class Trial(msgspec.Struct, frozen=True, kw_only=True):
    """One evaluated parameter set and the metrics it scored."""

    params: dict[str, Scalar]
    metrics: dict[str, float]


class ParameterTrend(msgspec.Struct, frozen=True, kw_only=True):
    """How one parameter relates to the metric across trials.

    ``verdict`` is ``"higher is better"``/``"lower is better"`` (numeric parameters, by the
    sign of the Spearman correlation once it reaches ``TREND_MIN_CORRELATION`` over at least
    ``TREND_MIN_TRIALS`` trials), ``"choice matters"`` (categorical: best and worst value means
    differ by more than half the metric's std) or ``"no clear effect"``.
    """

    parameter: str
    verdict: str
    correlation: float | None = None
    slope: float | None = None
    best_value: Scalar = None


class Recommendation(msgspec.Struct, frozen=True, kw_only=True):
    """The best trial so far and what to try next."""

    best_params: dict[str, Scalar]
    best_value: float
    next_params: dict[str, Scalar]
    next_space: dict[str, Param]
    trends: dict[str, ParameterTrend]
    notes: list[str] = []


def decode_space(raw: dict[str, Any]) -> SearchSpace:
    """Typed space from JSON-like data (``{"alpha": {"type": "range", "low": ...}}``)."""
    return msgspec.convert(raw, dict[str, Param])


def _forward(param: Range, value: float) -> float:
    return math.log(value) if param.log else value


def _backward(param: Range, value: float) -> int | float:
    out = math.exp(value) if param.log else value
    out = min(max(out, param.low), param.high)
    return round(out) if param.integer else float(out)


def _axis(param: Param, points: int) -> list[Scalar]:
    if isinstance(param, Choice):
        return list(param.values)
    ends = (_forward(param, param.low), _forward(param, param.high))
    values = [_backward(param, float(v)) for v in np.linspace(*ends, points)]
    return list(dict.fromkeys(values))  # integer rounding can repeat values


def grid(space: SearchSpace, max_trials: int = 100, *, points: int = 5) -> list[dict[str, Scalar]]:
    """The full grid (ranges cut into ``points`` values), or an evenly spaced subset of
    ``max_trials`` of it, in lexicographic order of sorted parameter names."""
    if max_trials < 1 or points < 2:
        raise ValueError("max_trials must be >= 1 and points >= 2")
    names = sorted(space)
    axes = [_axis(space[name], points) for name in names]
    total = math.prod(len(axis) for axis in axes)
    if total <= max_trials:
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    picks = np.unique(np.linspace(0, total - 1, max_trials).round().astype(np.int64))
    return [_grid_point(names, axes, int(i)) for i in picks]


def _grid_point(names: list[str], axes: list[list[Scalar]], index: int) -> dict[str, Scalar]:
    # Mixed-radix decoding: the last parameter varies fastest, as in itertools.product.
    chosen: list[Scalar] = []
    for axis in reversed(axes):
        index, digit = divmod(index, len(axis))
        chosen.append(axis[digit])
    return dict(zip(names, reversed(chosen), strict=True))


def random_trials(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Scalar]]:
    """``n`` parameter sets drawn uniformly (log-uniformly for log ranges) with ``seed``."""
    rng = np.random.default_rng(seed)
    trials: list[dict[str, Scalar]] = []
    for _ in range(n):
        params: dict[str, Scalar] = {}
        for name in sorted(space):
            param = space[name]
            if isinstance(param, Choice):
                params[name] = param.values[int(rng.integers(len(param.values)))]
            else:
                low, high = _forward(param, param.low), _forward(param, param.high)
                params[name] = _backward(param, float(rng.uniform(low, high)))
        trials.append(params)
    return trials


def _scored(trials: Sequence[Trial], metric: str, higher_is_better: bool) -> list[Trial]:
    usable = [t for t in trials if math.isfinite(t.metrics.get(metric, math.nan))]
    return sorted(usable, key=lambda t: t.metrics[metric], reverse=higher_is_better)


def _narrow_range(param: Range, values: list[float]) -> Range:
    low_t, high_t = _forward(param, param.low), _forward(param, param.high)
    lo, hi = min(_forward(param, v) for v in values), max(_forward(param, v) for v in values)
    # Pad by a quarter of the best trials' spread, and by at least a tenth of the old range, so
    # that a single best point still leaves room to explore around it.
    pad = max(0.25 * (hi - lo), 0.1 * (high_t - low_t))
    new_low = float(_backward(param, max(lo - pad, low_t)))
    new_high = float(_backward(param, min(hi + pad, high_t)))
    if param.integer:
        new_low, new_high = float(math.floor(new_low)), float(math.ceil(new_high))
    if new_low >= new_high:
        return param
    return Range(low=new_low, high=new_high, log=param.log, integer=param.integer)


def narrow(
    space: SearchSpace,
    trials: Sequence[Trial],
    *,
    metric: str,
    higher_is_better: bool = True,
    top_k: int = 3,
) -> SearchSpace:
    """A smaller space around the ``top_k`` best trials: ranges shrink to the span of their
    values plus padding (never beyond the old bounds), choices keep the values they used."""
    best = _scored(trials, metric, higher_is_better)[: max(top_k, 1)]
    if not best:
        raise ValueError(f"no trial has a finite {metric!r} metric")
    narrowed: SearchSpace = {}
    for name, param in space.items():
        used = [t.params[name] for t in best if name in t.params]
        if isinstance(param, Choice):
            kept = [v for v in param.values if v in used]
            narrowed[name] = Choice(values=kept) if kept else param
            continue
        numbers = [_number(v) for v in used if _is_number(v)]
        narrowed[name] = _narrow_range(param, numbers) if numbers else param
    return narrowed


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_trend(name: str, xs: np.ndarray, ys: np.ndarray, higher: bool) -> ParameterTrend:
    if xs.size < TREND_MIN_TRIALS or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return ParameterTrend(parameter=name, verdict="no clear effect")
    rho = float(np.corrcoef(rankdata(xs), rankdata(ys))[0, 1])
    slope = float(np.polyfit(xs, ys, 1)[0])
    improving = rho if higher else -rho
    verdict = "no clear effect"
    if abs(rho) >= TREND_MIN_CORRELATION:
        verdict = "higher is better" if improving > 0 else "lower is better"
    return ParameterTrend(parameter=name, verdict=verdict, correlation=rho, slope=slope)


def _categorical_trend(
    name: str, values: list[Scalar], ys: np.ndarray, higher: bool
) -> ParameterTrend:
    means: dict[str, tuple[Scalar, float]] = {}
    for value in dict.fromkeys(map(repr, values)):
        members = [y for v, y in zip(values, ys, strict=True) if repr(v) == value]
        original = next(v for v in values if repr(v) == value)
        means[value] = (original, float(np.mean(members)))
    ranked = sorted(means.values(), key=lambda item: item[1], reverse=higher)
    spread = abs(ranked[0][1] - ranked[-1][1])
    noise = float(np.std(ys))
    matters = len(ranked) > 1 and noise > 0 and spread > 0.5 * noise
    verdict = "choice matters" if matters else "no clear effect"
    return ParameterTrend(parameter=name, verdict=verdict, best_value=ranked[0][0])


def trend_by_parameter(
    trials: Sequence[Trial], metric: str, higher_is_better: bool = True
) -> dict[str, ParameterTrend]:
    """Per parameter, whether larger values (or which choice) improve ``metric``."""
    scored = _scored(trials, metric, higher_is_better)
    names = sorted({name for t in scored for name in t.params})
    trends: dict[str, ParameterTrend] = {}
    for name in names:
        having = [t for t in scored if name in t.params]
        values = [t.params[name] for t in having]
        ys = np.array([t.metrics[metric] for t in having], dtype="float64")
        if all(_is_number(v) for v in values):
            xs = np.array(values, dtype="float64")
            trend = _numeric_trend(name, xs, ys, higher_is_better)
            trends[name] = msgspec.structs.replace(trend, best_value=values[0])
        else:
            trends[name] = _categorical_trend(name, values, ys, higher_is_better)
    return trends


def _number(value: Scalar) -> float:
    if not _is_number(value):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]  # _is_number narrowed it to int | float


def _mode(values: list[Scalar]) -> Scalar:
    counts = {repr(v): values.count(v) for v in values}
    return max(values, key=lambda v: counts[repr(v)])  # first of the most frequent


def _centroid(space: SearchSpace, best: list[Trial]) -> dict[str, Scalar]:
    """Mean of the best trials per range (in log space for log ranges), mode per choice."""
    point: dict[str, Scalar] = {}
    for name in sorted(space):
        param = space[name]
        used = [t.params[name] for t in best if name in t.params]
        if not used:
            point[name] = _axis(param, 2)[0]
        elif isinstance(param, Choice) or not all(_is_number(v) for v in used):
            point[name] = _mode(used)
        else:
            mean = float(np.mean([_forward(param, _number(v)) for v in used]))
            point[name] = _backward(param, mean)
    return point


def _edge_notes(space: SearchSpace, best: Trial, trends: dict[str, ParameterTrend]) -> list[str]:
    """Hints to widen a range whose best value sits on the edge the trend points past."""
    notes: list[str] = []
    for name, param in sorted(space.items()):
        value = best.params.get(name)
        trend = trends.get(name)
        if not isinstance(param, Range) or not _is_number(value) or trend is None:
            continue
        low, high = _forward(param, param.low), _forward(param, param.high)
        position = (_forward(param, _number(value)) - low) / (high - low)
        if position >= 0.95 and trend.verdict == "higher is better":
            notes.append(f"{name}: best value is at the top of the range; consider raising high")
        if position <= 0.05 and trend.verdict == "lower is better":
            notes.append(f"{name}: best value is at the bottom of the range; consider lowering low")
    return notes


def recommend(
    trials: Sequence[Trial],
    space: SearchSpace,
    *,
    metric: str,
    higher_is_better: bool = True,
    top_k: int = 3,
    seed: int = 0,
) -> Recommendation:
    """Best parameters so far, the narrowed space, and one untried parameter set to run next
    (the centroid of the ``top_k`` best trials, or a seeded random point of the narrowed space
    when the centroid was already tried)."""
    best = _scored(trials, metric, higher_is_better)[: max(top_k, 1)]
    if not best:
        raise ValueError(f"no trial has a finite {metric!r} metric")
    next_space = narrow(
        space, trials, metric=metric, higher_is_better=higher_is_better, top_k=top_k
    )
    trends = trend_by_parameter(trials, metric, higher_is_better)
    suggestion = _centroid(next_space, best)
    tried = [t.params for t in trials]
    attempt = 0
    while suggestion in tried and attempt < 20:
        suggestion = random_trials(next_space, 1, seed + attempt)[0]
        attempt += 1
    return Recommendation(
        best_params=dict(best[0].params),
        best_value=best[0].metrics[metric],
        next_params=suggestion,
        next_space=next_space,
        trends=trends,
        notes=_edge_notes(space, best[0], trends),
    )


def history_trend(
    values: Sequence[float],
    higher_is_better: bool = True,
    *,
    window: int = 5,
    tolerance: float = 0.05,
) -> str:
    """``"improving"``, ``"stable"`` or ``"declining"`` for a metric's history (oldest first).

    Rule: fit a least-squares line through the last ``window`` finite values; its change over
    the window, divided by the mean absolute value of those points, is compared with
    ``tolerance`` (5% by default). Within tolerance, or fewer than 2 values, is ``"stable"``.
    """
    recent = np.array([v for v in values if math.isfinite(v)], dtype="float64")[-window:]
    if recent.size < 2:
        return "stable"
    slope = float(np.polyfit(np.arange(recent.size, dtype="float64"), recent, 1)[0])
    change = slope * (recent.size - 1)
    scale = max(float(np.mean(np.abs(recent))), 1e-12)
    relative = change / scale if higher_is_better else -change / scale
    if abs(relative) <= tolerance:
        return "stable"
    return "improving" if relative > 0 else "declining"
