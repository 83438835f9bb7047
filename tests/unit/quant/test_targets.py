"""Targets: forward returns per symbol, unknown tail kept as NaN, direction labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant.specs import TargetSpec
from quant.targets import labelled, make_targets


def frame() -> pd.DataFrame:
    stamps = pd.bdate_range("2024-01-01", periods=5)
    return pd.DataFrame(
        {
            "timestamp": list(stamps) * 2,
            "symbol": ["B"] * 5 + ["A"] * 5,
            "close": [10.0, 11, 9, 9, 12, 100.0, 90, 95, 95, 80],
        }
    )


def test_regression_targets_by_hand() -> None:
    out = make_targets(frame(), TargetSpec(horizon=2))
    a = out[out["symbol"] == "A"]
    assert a["fwd_return"].iloc[0] == pytest.approx(math.log(95 / 100))
    assert a["fwd_return"].iloc[2] == pytest.approx(math.log(80 / 95))
    assert a["fwd_return"].iloc[3:].isna().all()  # the last 2 bars have no known future
    assert a["next_return"].iloc[0] == pytest.approx(90 / 100 - 1)
    assert math.isnan(a["next_return"].iloc[4])
    assert out["target"].equals(out["fwd_return"])
    assert out["symbol"].tolist() == ["A"] * 5 + ["B"] * 5  # sorted like sort_frame


def test_no_cross_symbol_targets() -> None:
    out = make_targets(frame(), TargetSpec(horizon=1))
    a_last = out[out["symbol"] == "A"].iloc[-1]
    assert math.isnan(a_last["fwd_return"])  # not B's first close


def test_direction_labels_and_labelled_mask() -> None:
    out = make_targets(frame(), TargetSpec(kind="direction", horizon=1))
    b = out[out["symbol"] == "B"]
    assert b["target"].iloc[:4].tolist() == [1.0, 0.0, 0.0, 1.0]  # flat (9 -> 9) is not up
    assert math.isnan(b["target"].iloc[4])
    mask = labelled(out)
    assert mask.sum() == 8
    assert not mask[np.flatnonzero(out["symbol"] == "B")[-1]]
