"""Which way is better for each metric, and the side-by-side comparison of versions.

A metric's direction is looked up by its exact (lower-cased) name, then by its name's tokens
from the last one back (``val_rmse`` -> ``rmse``, ``sharpe_ratio`` -> ``sharpe``), so the usual
prefixes and suffixes need no configuration. ``QUANTOPS_REGISTRY_METRIC_DIRECTIONS`` adds or
overrides entries (``turnover:lower,hit_rate:higher``). A metric found nowhere has no winner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from shared.contracts.registry import Direction, MetricComparison

HIGHER: Direction = "higher"
LOWER: Direction = "lower"
UNKNOWN: Direction = "unknown"

DEFAULT_DIRECTIONS: Mapping[str, Direction] = {
    **dict.fromkeys((
        "accuracy", "precision", "recall", "f1", "auc", "roc_auc", "r2", "hit_rate", "win_rate",
        "profit_factor", "sharpe", "sortino", "calmar", "return", "returns", "cagr", "alpha",
        "information_ratio", "ic", "rank_ic", "expectancy", "profit", "pnl",
    ), HIGHER),
    **dict.fromkeys((
        "rmse", "mse", "mae", "mape", "smape", "loss", "log_loss", "logloss", "brier",
        "drawdown", "max_drawdown", "mdd", "volatility", "var", "cvar", "turnover", "error",
    ), LOWER),
}
_TOKENS = re.compile(r"[_.:\-]+")


def parse_overrides(text: str) -> dict[str, Direction]:
    """``"a:higher,b:lower"`` -> ``{"a": "higher", "b": "lower"}`` (validated by settings)."""
    out: dict[str, Direction] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, direction = item.rpartition(":")
        out[name.lower()] = HIGHER if direction == HIGHER else LOWER
    return out


class MetricDirections:
    """Looks up higher-/lower-is-better for a metric name.

    Args:
        overrides: exact names (or tokens) mapped to a direction; they win over the defaults.
    """

    def __init__(self, overrides: Mapping[str, Direction] | None = None) -> None:
        self.table: dict[str, Direction] = {**DEFAULT_DIRECTIONS, **(overrides or {})}

    def __call__(self, name: str) -> Direction:
        lowered = name.lower()
        if lowered in self.table:
            return self.table[lowered]
        tokens = [t for t in _TOKENS.split(lowered) if t]
        # Longest suffix first: "max_drawdown" before "drawdown", "rank_ic" before "ic".
        for start in range(len(tokens)):
            suffix = "_".join(tokens[start:])
            if suffix in self.table:
                return self.table[suffix]
        for token in reversed(tokens):
            if token in self.table:
                return self.table[token]
        return UNKNOWN


def compare(refs: Sequence[str], metrics: Sequence[Mapping[str, float]],
            directions: MetricDirections) -> list[MetricComparison]:
    """Per metric (union over the versions, sorted by name): values, deltas against the first
    version, and the winner: the single best value by direction, None on a tie or when the
    direction is unknown or fewer than two versions report the metric."""
    names = sorted({name for m in metrics for name in m})
    out = []
    for name in names:
        values = [m.get(name) for m in metrics]
        base = values[0]
        deltas = [None if v is None or base is None else v - base for v in values]
        direction = directions(name)
        out.append(MetricComparison(name=name, direction=direction, values=values,
                                    deltas=deltas, winner=_winner(refs, values, direction)))
    return out


def _winner(refs: Sequence[str], values: Sequence[float | None], direction: Direction
            ) -> str | None:
    present = [(v, r) for v, r in zip(values, refs, strict=True) if v is not None]
    if direction == UNKNOWN or len(present) < 2:
        return None
    best = max(v for v, _ in present) if direction == HIGHER else min(v for v, _ in present)
    winners = [r for v, r in present if v == best]
    return winners[0] if len(winners) == 1 else None
