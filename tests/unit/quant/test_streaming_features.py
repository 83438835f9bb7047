"""Streaming features equal the batch features bar for bar over the whole shipped history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant.data import load_demo_prices
from quant.features import compute_features, default_feature_set, feature_columns
from quant.specs import FeatureSpec
from quant.streaming_features import BarValues, StreamingFeatures

TOLERANCE = 1e-9

VARIANTS = [
    FeatureSpec(name="ret", params={"window": 3}),
    FeatureSpec(name="ema_ratio", params={"span": 5}),
    FeatureSpec(name="rsi", params={"window": 2}),
    FeatureSpec(name="macd", params={"fast": 3, "slow": 7, "signal": 4}),
    FeatureSpec(name="bollinger", params={"window": 5, "n_std": 1.5}),
    FeatureSpec(name="atr", params={"window": 30}),
    FeatureSpec(name="rvol", params={"window": 2}),
    FeatureSpec(name="volume_z", params={"window": 60}),
]


def _streamed(frame: pd.DataFrame, specs: list[FeatureSpec]) -> np.ndarray:
    rows: list[np.ndarray] = []
    for _, group in frame.groupby("symbol", sort=True):
        features = StreamingFeatures(specs)
        for bar in group[["open", "high", "low", "close", "volume"]].itertuples(index=False):
            rows.append(features.update(BarValues(*map(float, bar))))
    return np.vstack(rows)


@pytest.mark.parametrize("specs", [default_feature_set(), VARIANTS], ids=["default", "variants"])
def test_streaming_equals_batch_over_the_shipped_history(specs: list[FeatureSpec]) -> None:
    frame = load_demo_prices()
    batch = compute_features(frame, specs)[feature_columns(specs)].to_numpy(dtype="float64")
    streamed = _streamed(frame, specs)
    assert streamed.shape == batch.shape and len(batch) > 12_000
    np.testing.assert_array_equal(np.isnan(streamed), np.isnan(batch))
    finite = np.isfinite(batch)
    worst = np.max(np.abs(streamed[finite] - batch[finite]))
    assert worst <= TOLERANCE, f"largest difference {worst:.3g}"


def test_a_constant_series_streams_like_the_batch() -> None:
    flat = pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=80), "symbol": "X",
                         "open": 5.0, "high": 5.0, "low": 5.0, "close": 5.0, "volume": 100.0})
    specs = default_feature_set()
    batch = compute_features(flat, specs)[feature_columns(specs)].to_numpy(dtype="float64")
    np.testing.assert_allclose(_streamed(flat, specs), batch, atol=TOLERANCE, equal_nan=True)


def test_columns_follow_the_batch_order() -> None:
    specs = [*VARIANTS, VARIANTS[0]]
    assert StreamingFeatures(specs).columns == feature_columns(specs)
