"""Latest-bar features and scoring: equal to the training-side computation, no look-ahead past
``end``, and clear refusals."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from quant.data import load_demo_prices
from quant.estimators import build_model
from quant.features import compute_features, feature_columns, warmup_bars
from quant.recipe import Recipe
from quant.scoring import latest_features, min_bars, naive_utc, score
from quant.specs import EstimatorSpec, FeatureSpec, TradingSpec
from quant.training import predict_latest

SPECS = [FeatureSpec(name="ret", params={"window": 5}), FeatureSpec(name="rsi"),
         FeatureSpec(name="macd")]


@pytest.fixture(scope="module")
def frame():  # type: ignore[no-untyped-def]
    return load_demo_prices(["IBM", "MSFT"])


def fitted(frame, recipe: Recipe):  # type: ignore[no-untyped-def]
    feats = compute_features(frame, recipe.features)
    names = feature_columns(recipe.features)
    ok = np.isfinite(feats[names].to_numpy()).all(axis=1)
    y = np.log(frame.sort_values(["symbol", "timestamp"])["close"]).diff().fillna(0).to_numpy()
    return build_model(recipe.estimators, "regression").fit(feats[names].to_numpy()[ok], y[ok])


def test_latest_features_are_the_last_row_of_the_full_computation(frame) -> None:  # type: ignore[no-untyped-def]
    latest = latest_features(frame, SPECS)
    full = compute_features(frame, SPECS)
    names = feature_columns(SPECS)
    for i, symbol in enumerate(latest.symbols):
        last = full[full["symbol"] == symbol].iloc[-1]
        assert latest.timestamps[i] == last["timestamp"].to_pydatetime()
        np.testing.assert_allclose(latest.matrix[i], last[names].to_numpy(dtype="float64"))


def test_scores_equal_predict_latest_and_follow_the_trading_rule(frame) -> None:  # type: ignore[no-untyped-def]
    recipe = Recipe(features=SPECS, estimators=[EstimatorSpec(name="ridge")],
                    trading=TradingSpec(mode="long_flat"))
    model = fitted(frame, recipe)
    scored = score(model, recipe, latest_features(frame, SPECS), ["MSFT", "IBM"])
    want = predict_latest(model, frame, SPECS)
    assert [s.symbol for s in scored] == ["MSFT", "IBM"]
    for s in scored:
        assert s.prediction == pytest.approx(want[s.symbol][1])
        assert s.position == (1.0 if s.signal > 0 else 0.0)  # long/flat


def test_bars_after_end_change_nothing(frame) -> None:  # type: ignore[no-untyped-def]
    end = datetime(2010, 6, 30)
    before = latest_features(frame, SPECS, end)
    future = frame.copy()
    later = future["timestamp"] > naive_utc(end)
    future.loc[later, ["open", "high", "low", "close"]] *= 3.0
    after = latest_features(future, SPECS, end)
    np.testing.assert_array_equal(before.matrix, after.matrix)
    assert all(t <= end for t in before.timestamps)


def test_refusals_name_the_symbols(frame) -> None:  # type: ignore[no-untyped-def]
    latest = latest_features(frame.groupby("symbol").head(10), SPECS)  # too short for macd
    assert sorted(latest.incomplete) == ["IBM", "MSFT"]
    with pytest.raises(ValueError, match="not enough history"):
        latest.rows_for(["IBM"])
    with pytest.raises(ValueError, match=r"no data for symbols \['GE'\]"):
        latest_features(frame, SPECS).rows_for(["GE"])
    with pytest.raises(ValueError, match="no bars"):
        latest_features(frame, SPECS, datetime(1990, 1, 1))
    assert min_bars(Recipe(features=SPECS)) > 26  # macd's slow EMA plus its signal


def test_min_bars_make_the_short_history_agree_with_the_long_one() -> None:
    frame = load_demo_prices(["IBM", "MSFT"])
    recipe = Recipe()
    full = latest_features(frame, recipe.features)
    needed = min_bars(recipe)
    short = latest_features(frame.groupby("symbol").tail(needed), recipe.features)
    np.testing.assert_allclose(short.matrix, full.matrix, rtol=1e-5, atol=1e-6)
    # The old minimum (warm-up only) left the smoothed features visibly unsettled.
    warm = latest_features(frame.groupby("symbol").tail(warmup_bars(recipe.features)),
                           recipe.features)
    assert not np.allclose(warm.matrix, full.matrix, rtol=1e-3, atol=1e-4)
