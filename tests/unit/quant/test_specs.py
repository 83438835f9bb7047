"""Spec validation: catalogue names, parameter rules, and the same checks on decode."""

from __future__ import annotations

import msgspec
import pytest

from quant.specs import (
    CostSpec,
    EstimatorSpec,
    FeatureSpec,
    TargetSpec,
    TradingSpec,
    WalkForwardSpec,
)


def test_feature_defaults_and_stem() -> None:
    assert FeatureSpec(name="rsi").stem() == "rsi_14"
    assert FeatureSpec(name="ret", params={"window": 5}).stem() == "ret_5"
    assert FeatureSpec(name="bollinger").stem() == "bollinger_20_2"
    assert FeatureSpec(name="macd", params={"fast": 5}).resolved_params() == {
        "fast": 5,
        "slow": 26,
        "signal": 9,
    }
    # integral floats are accepted and normalised to int
    assert FeatureSpec(name="rsi", params={"window": 10.0}).stem() == "rsi_10"


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("rsii", {}, "unknown feature 'rsii'"),
        ("rsi", {"windw": 3}, "unknown parameters \\['windw'\\]"),
        ("rsi", {"window": 1}, "outside"),
        ("rsi", {"window": 2.5}, "must be an integer"),
        ("rsi", {"window": True}, "must be a number"),
        ("ma_ratio", {"window": 10_000}, "outside"),
        ("macd", {"fast": 30, "slow": 26}, "fast must be smaller than slow"),
    ],
)
def test_feature_spec_rejections(name: str, params: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureSpec(name=name, params=params)


def test_decode_runs_the_same_checks_and_raises_a_value_error() -> None:
    ok = msgspec.json.decode(b'{"name": "atr", "params": {"window": 7}}', type=FeatureSpec)
    assert ok.stem() == "atr_7"
    with pytest.raises(ValueError, match="unknown feature"):
        msgspec.json.decode(b'{"name": "nope"}', type=FeatureSpec)
    with pytest.raises(ValueError, match="unknown estimator"):
        msgspec.convert({"name": "svm"}, EstimatorSpec)


def test_target_spec() -> None:
    assert TargetSpec() == TargetSpec(kind="regression", horizon=1)
    with pytest.raises(ValueError, match="horizon"):
        TargetSpec(horizon=0)
    with pytest.raises(ValueError, match="kind"):
        msgspec.convert({"kind": "volatility"}, TargetSpec)


def test_estimator_spec() -> None:
    spec = EstimatorSpec(name="ridge", hyperparameters={"alpha": 0.5})
    assert spec.hyperparameters == {"alpha": 0.5}
    with pytest.raises(ValueError, match="unknown estimator 'svm'"):
        EstimatorSpec(name="svm")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_splits": 0},
        {"min_train_size": 1},
        {"train_size": 1},
        {"test_size": 0},
        {"embargo": -1},
        {"mode": "anchored"},
    ],
)
def test_walk_forward_spec_rejections(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        msgspec.convert(kwargs, WalkForwardSpec)


def test_cost_and_trading_specs() -> None:
    assert CostSpec().bps == 1.0
    assert TradingSpec().mode == "long_short"
    with pytest.raises(ValueError, match="bps"):
        CostSpec(bps=-1)
    with pytest.raises(ValueError, match="threshold"):
        TradingSpec(threshold=-0.1)
    with pytest.raises(ValueError, match="mode"):
        msgspec.convert({"mode": "short_only"}, TradingSpec)


def test_specs_are_frozen() -> None:
    spec = TargetSpec()
    with pytest.raises(AttributeError):
        spec.horizon = 3  # type: ignore[misc]
