"""Scoring the newest bar of each symbol, split so that the expensive half can be cached.

``latest_features`` computes the feature vector of each symbol's last bar (up to ``end``);
``score`` turns vectors into predictions, signals and positions with a fitted model. A dataset
is immutable (it is addressed by its digest), so its latest features can be computed once per
(digest, feature set, end) and every later request only pays for ``score``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from quant.data import finite_mask
from quant.estimators import Model, predict_scores
from quant.features import compute_features, feature_columns, settle_bars, warmup_bars
from quant.performance import positions_from_signal, to_signal
from quant.recipe import Recipe
from quant.specs import FeatureSpec


@dataclass(frozen=True)
class LatestFeatures:
    """Per symbol (sorted): the newest bar's timestamp and feature vector (a matrix row).
    ``incomplete`` lists symbols whose newest bar lacks history for some feature."""

    symbols: list[str]
    timestamps: list[datetime]
    matrix: np.ndarray
    incomplete: list[str]

    def rows_for(self, symbols: Sequence[str]) -> list[int]:
        """Row numbers of ``symbols``; ``ValueError`` naming unknown or incomplete ones."""
        wanted = list(symbols) or [s for s in self.symbols if s not in self.incomplete]
        unknown = sorted(set(wanted) - set(self.symbols))
        if unknown:
            raise ValueError(f"no data for symbols {unknown}; available: {self.symbols}")
        short = sorted(set(wanted) & set(self.incomplete))
        if short:
            raise ValueError(f"not enough history to compute the model's features for {short}")
        index = {s: i for i, s in enumerate(self.symbols)}
        return [index[s] for s in wanted]


def latest_features(frame: pd.DataFrame, specs: Sequence[FeatureSpec],
                    end: datetime | None = None) -> LatestFeatures:
    """Features of the newest bar of each symbol at or before ``end``.

    Only the last ``warmup_bars(specs)`` bars of each symbol are needed for the newest value of
    every rolling feature except the recursive ones (EMA, Wilder averages), whose newest value
    depends, ever more faintly, on all history: the whole history is used so that a prediction
    equals what training computed for the same bar.
    """
    if end is not None:
        frame = frame[frame["timestamp"] <= naive_utc(end)]
    if frame.empty:
        raise ValueError("no bars at or before the requested end")
    names = feature_columns(specs)
    feats = compute_features(frame, specs)
    latest = feats.groupby("symbol", sort=True).tail(1)
    ok = finite_mask(latest[names])
    symbols = [str(s) for s in latest["symbol"]]
    return LatestFeatures(
        symbols=symbols,
        timestamps=[pd.Timestamp(t).to_pydatetime() for t in latest["timestamp"]],
        matrix=latest[names].to_numpy(dtype="float64"),
        incomplete=[s for s, good in zip(symbols, ok, strict=True) if not good])


def naive_utc(value: datetime | str) -> pd.Timestamp:
    """A time as the tz-naive UTC timestamp frames use (an aware time is converted)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def min_bars(recipe: Recipe) -> int:
    """Bars per symbol a request must send for its newest features to equal the dataset path's.

    Existing is not enough: with only the warm-up bars, the EMA- and Wilder-smoothed features
    still carry their seed and differ from the same bar's value computed on a long history (by
    up to 11% in the predictions of the demo model). The settling bars make the difference
    negligible (``features.settle_bars``); a live strategy, which keeps every symbol's state
    from its first bar, has no difference at all.
    """
    return warmup_bars(recipe.features) + settle_bars(recipe.features)


@dataclass(frozen=True)
class Scored:
    symbol: str
    timestamp: datetime
    prediction: float
    signal: float
    position: float


def score(model: Model, recipe: Recipe, latest: LatestFeatures,
          symbols: Sequence[str] = ()) -> list[Scored]:
    """Predictions for ``symbols`` (default: every complete one), in the order asked."""
    rows = latest.rows_for(symbols)
    values = predict_scores(model, latest.matrix[rows])
    signal = to_signal(values, recipe.target.kind)
    position = positions_from_signal(signal, recipe.trading)
    return [Scored(symbol=latest.symbols[r], timestamp=latest.timestamps[r],
                   prediction=float(v), signal=float(s), position=float(p))
            for r, v, s, p in zip(rows, values, signal, position, strict=True)]
