"""Walk-forward splits: no overlap, disjoint test windows, embargo respected, short data fails."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from quant.specs import WalkForwardSpec
from quant.walkforward import Split, rows_in, timestamp_codes, walk_forward_splits


def assert_valid(splits: list[Split], n: int, gap: int) -> None:
    tests = [s.test for s in splits]
    for split in splits:
        assert split.train.size and split.test.size
        assert np.all(np.diff(split.train) == 1) and np.all(np.diff(split.test) == 1)
        assert np.intersect1d(split.train, split.test).size == 0
        # train ends, then at least `gap` unused timestamps, then the test window starts
        assert split.test[0] - split.train[-1] - 1 >= gap
        assert split.test[-1] < n
    for earlier, later in itertools.pairwise(tests):
        assert earlier[-1] < later[0]  # disjoint and in time order
    all_test = np.concatenate(tests)
    assert np.unique(all_test).size == all_test.size


@pytest.mark.parametrize("horizon", [1, 3, 10])
def test_expanding_splits(horizon: int) -> None:
    spec = WalkForwardSpec(n_splits=4, min_train_size=40, embargo=2)
    splits = walk_forward_splits(200, spec, horizon=horizon)
    gap = max(2, horizon)
    assert_valid(splits, 200, gap)
    assert len(splits) == 4
    assert all(s.train[0] == 0 for s in splits)
    assert splits[-1].test[-1] == 199
    assert [s.train.size for s in splits] == sorted(s.train.size for s in splits)
    assert splits[0].train.size >= 40
    # gap exactly the embargo: no timestamp is wasted beyond it
    assert all(s.test[0] - s.train[-1] - 1 == gap for s in splits)


def test_rolling_splits_have_fixed_windows() -> None:
    spec = WalkForwardSpec(mode="rolling", n_splits=5, train_size=30, test_size=10)
    splits = walk_forward_splits(120, spec, horizon=2)
    assert_valid(splits, 120, 2)
    assert all(s.train.size == 30 for s in splits)
    assert all(s.test.size == 10 for s in splits)
    assert splits[0].train[0] > 0


def test_rolling_window_may_be_smaller_than_min_train_size() -> None:
    spec = WalkForwardSpec(mode="rolling", n_splits=2, train_size=20, min_train_size=252)
    splits = walk_forward_splits(100, spec)
    assert all(s.train.size == 20 for s in splits)


def test_test_size_default_shares_the_rest() -> None:
    spec = WalkForwardSpec(n_splits=3, min_train_size=50)
    splits = walk_forward_splits(111, spec, horizon=1)
    assert [s.test.size for s in splits] == [20, 20, 20]
    assert splits[0].train.size == 111 - 60 - 1


def test_too_short_raises() -> None:
    with pytest.raises(ValueError, match="not enough data"):
        walk_forward_splits(100, WalkForwardSpec(n_splits=5, min_train_size=252))
    with pytest.raises(ValueError, match="not enough data"):
        walk_forward_splits(60, WalkForwardSpec(n_splits=2, min_train_size=30, test_size=20))


def test_multi_symbol_rows_split_by_timestamp() -> None:
    stamps = pd.bdate_range("2024-01-01", periods=50)
    # Symbol B starts later: rows differ per timestamp, cuts must not.
    frame = pd.DataFrame(
        {"timestamp": list(stamps) + list(stamps[10:]), "symbol": ["A"] * 50 + ["B"] * 40}
    )
    unique, codes = timestamp_codes(frame["timestamp"])
    assert unique.size == 50
    splits = walk_forward_splits(unique.size, WalkForwardSpec(n_splits=2, min_train_size=20))
    for split in splits:
        train = frame.iloc[rows_in(codes, split.train)]
        test = frame.iloc[rows_in(codes, split.test)]
        assert train["timestamp"].max() < test["timestamp"].min()
        assert set(test["timestamp"]) == set(unique[split.test])
        assert set(test["symbol"]) == {"A", "B"}
