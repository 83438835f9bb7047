"""End-to-end walk-forward training on real demo data, and latest-bar scoring."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pandas as pd
import pytest

from quant.data import load_demo_prices
from quant.estimators import dump_model, load_model
from quant.features import default_feature_set
from quant.specs import EstimatorSpec, FeatureSpec, TargetSpec, WalkForwardSpec
from quant.training import FoldMetrics, predict_latest, train_walk_forward

WALK = WalkForwardSpec(n_splits=4, min_train_size=252)


def aapl() -> pd.DataFrame:
    frame = load_demo_prices(["AAPL"])
    return frame[(frame["timestamp"] >= "2008-01-01") & (frame["timestamp"] < "2012-01-01")]


def finite(struct: msgspec.Struct) -> bool:
    values = msgspec.to_builtins(struct).values()
    return all(v is None or math.isfinite(v) for v in values)


@pytest.mark.parametrize(
    "estimator",
    [
        EstimatorSpec(name="ridge"),
        EstimatorSpec(name="random_forest", hyperparameters={"n_estimators": 20}),
    ],
    ids=["ridge", "forest"],
)
def test_train_on_real_data(estimator: EstimatorSpec) -> None:
    seen: list[tuple[int, FoldMetrics]] = []
    result = train_walk_forward(
        aapl(), estimator=estimator, walk_forward=WALK, on_fold=lambda i, m: seen.append((i, m))
    )
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert [m for _, m in seen] == result.folds
    assert finite(result.prediction) and finite(result.trading)
    assert all(finite(f.prediction) and finite(f.trading) for f in result.folds)
    assert result.prediction.n == len(result.predictions) == sum(f.n_test for f in result.folds)
    assert 0.0 <= result.trading.max_drawdown < 1.0
    assert result.trading.n_periods == len(result.equity)
    assert result.feature_names[:3] == ["ret_1", "ret_5", "ret_20"]
    assert sum(result.importances.values()) == pytest.approx(1.0)
    assert result.importance_method == "native"
    assert result.n_rows > result.prediction.n
    assert any("warm-up" in w for w in result.warnings)
    summary = msgspec.json.decode(msgspec.json.encode(result.summary()))
    assert summary["trading"]["n_periods"] == result.trading.n_periods


def test_out_of_sample_rows_come_after_their_training_window() -> None:
    result = train_walk_forward(aapl(), walk_forward=WALK, target=TargetSpec(horizon=3))
    for fold in result.folds:
        rows = result.predictions[result.predictions["fold"] == fold.fold]
        assert len(rows) == fold.n_test
        assert rows["timestamp"].min() > pd.Timestamp(fold.train_end)
        # embargo of >= horizon bars: at least 3 business days between train end and test start
        gap = np.busday_count(
            np.datetime64(fold.train_end[:10]), np.datetime64(fold.test_start[:10])
        )
        assert gap >= 3
    assert result.predictions["timestamp"].is_monotonic_increasing
    assert result.equity.index.is_monotonic_increasing


def test_training_is_deterministic() -> None:
    spec = EstimatorSpec(name="extra_trees", hyperparameters={"n_estimators": 10})
    a = train_walk_forward(aapl(), estimator=spec, walk_forward=WALK)
    b = train_walk_forward(aapl(), estimator=spec, walk_forward=WALK)
    assert a.summary() == b.summary()


def test_direction_ensemble_on_two_symbols() -> None:
    frame = load_demo_prices(["IBM", "MSFT"])
    frame = frame[(frame["timestamp"] >= "2009-01-01") & (frame["timestamp"] < "2012-01-01")]
    result = train_walk_forward(
        frame,
        features=[FeatureSpec(name="ret", params={"window": 5}), FeatureSpec(name="rsi")],
        target=TargetSpec(kind="direction", horizon=5),
        estimator=[EstimatorSpec(name="logistic_regression"), EstimatorSpec(name="knn")],
        walk_forward=WalkForwardSpec(n_splits=3, min_train_size=200),
    )
    assert set(result.predictions["symbol"]) == {"IBM", "MSFT"}
    preds = result.predictions["prediction"]
    assert ((preds >= 0) & (preds <= 1)).all()
    assert set(result.predictions["target"].unique()) <= {0.0, 1.0}
    assert result.importance_method == "permutation"  # knn has no native importances
    assert finite(result.trading)
    # two symbols per timestamp, one equity point per timestamp
    assert len(result.predictions) == 2 * result.trading.n_periods


def test_final_model_round_trips_and_scores_latest_bar() -> None:
    frame = aapl()
    result = train_walk_forward(frame, walk_forward=WALK)
    model = load_model(dump_model(result.model))
    latest = predict_latest(model, frame, default_feature_set())
    assert list(latest) == ["AAPL"]
    timestamp, score = latest["AAPL"]
    assert timestamp == frame["timestamp"].max().to_pydatetime()
    assert math.isfinite(score)
    assert latest == predict_latest(result.model, frame, default_feature_set(), ["AAPL"])


def test_predict_latest_errors() -> None:
    frame = aapl()
    result = train_walk_forward(frame, walk_forward=WALK)
    with pytest.raises(ValueError, match="no data for symbols \\['MSFT'\\]"):
        predict_latest(result.model, frame, default_feature_set(), ["MSFT"])
    with pytest.raises(ValueError, match="not enough history"):
        predict_latest(result.model, frame.iloc[:10], default_feature_set())


def test_too_little_data_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not enough data"):
        train_walk_forward(aapl().iloc[:300], walk_forward=WALK)
