"""Search spaces: grids, random trials, narrowing, trends, recommendations, history trend."""

from __future__ import annotations

import math

import msgspec
import pytest

from quant.search import (
    Choice,
    Range,
    SearchSpace,
    Trial,
    decode_space,
    grid,
    history_trend,
    narrow,
    random_trials,
    recommend,
    trend_by_parameter,
)

SPACE: SearchSpace = {
    "alpha": Range(low=1e-4, high=1.0, log=True),
    "depth": Range(low=2, high=10, integer=True),
    "loss": Choice(values=["squared", "huber"]),
}


def test_grid_full_product() -> None:
    trials = grid(SPACE, max_trials=1000, points=3)
    assert len(trials) == 3 * 3 * 2
    alphas = sorted({float(t["alpha"] or 0) for t in trials})
    assert alphas == pytest.approx([1e-4, 1e-2, 1.0])  # geometric for a log range
    assert sorted({int(t["depth"] or 0) for t in trials}) == [2, 6, 10]
    assert all(isinstance(t["depth"], int) for t in trials)
    assert trials[0] == {"alpha": pytest.approx(1e-4), "depth": 2, "loss": "squared"}


def test_grid_subset_is_even_and_deterministic() -> None:
    trials = grid(SPACE, max_trials=7, points=5)
    assert len(trials) == 7
    assert trials == grid(SPACE, max_trials=7, points=5)
    full = grid(SPACE, max_trials=10_000, points=5)
    assert trials[0] == full[0] and trials[-1] == full[-1]
    assert all(t in full for t in trials)


def test_integer_grid_drops_repeats() -> None:
    assert grid({"k": Range(low=1, high=3, integer=True)}, points=5) == [
        {"k": 1},
        {"k": 2},
        {"k": 3},
    ]


def test_random_trials_bounds_and_seed() -> None:
    trials = random_trials(SPACE, 200, seed=1)
    assert len(trials) == 200
    assert all(1e-4 <= t["alpha"] <= 1.0 for t in trials)  # type: ignore[operator]
    assert all(isinstance(t["depth"], int) and 2 <= t["depth"] <= 10 for t in trials)
    assert {t["loss"] for t in trials} == {"squared", "huber"}
    # log-uniform: about half the draws below the geometric midpoint 1e-2
    below = sum(t["alpha"] < 1e-2 for t in trials)  # type: ignore[operator]
    assert 70 < below < 130
    assert trials == random_trials(SPACE, 200, seed=1)
    assert trials != random_trials(SPACE, 200, seed=2)


def test_space_decoding_and_validation() -> None:
    space = decode_space(
        {
            "alpha": {"type": "range", "low": 0.001, "high": 1, "log": True},
            "loss": {"type": "choice", "values": ["a", "b"]},
        }
    )
    assert space["alpha"] == Range(low=0.001, high=1.0, log=True)
    with pytest.raises(ValueError, match="low < high"):
        Range(low=2, high=1)
    with pytest.raises(ValueError, match="log range needs low > 0"):
        decode_space({"a": {"type": "range", "low": 0, "high": 1, "log": True}})
    with pytest.raises(msgspec.ValidationError):
        decode_space({"a": {"type": "interval", "low": 0, "high": 1}})
    with pytest.raises(ValueError, match="at least one value"):
        Choice(values=[])


def scored(depth_effect: float) -> list[Trial]:
    """Metric rises with depth (times depth_effect) and ignores alpha; huber is better."""
    trials = []
    for params in grid(SPACE, max_trials=1000, points=5):
        depth = params["depth"]
        metric = depth_effect * depth + (0.5 if params["loss"] == "huber" else 0.0)  # type: ignore[operator]
        trials.append(Trial(params=params, metrics={"sharpe": metric}))
    return trials


def test_narrow_around_the_best() -> None:
    narrowed = narrow(SPACE, scored(1.0), metric="sharpe", top_k=3)
    depth = narrowed["depth"]
    assert isinstance(depth, Range) and depth.integer
    assert depth.high == 10 and depth.low > 2  # moved towards the best (deep) trials
    assert narrowed["loss"] == Choice(values=["huber"])
    alpha = narrowed["alpha"]
    assert isinstance(alpha, Range) and alpha.log
    assert alpha.low >= 1e-4 and alpha.high <= 1.0
    # lower is better flips which end survives
    flipped = narrow(SPACE, scored(1.0), metric="sharpe", higher_is_better=False, top_k=3)
    assert isinstance(flipped["depth"], Range) and flipped["depth"].low == 2
    assert flipped["loss"] == Choice(values=["squared"])
    with pytest.raises(ValueError, match="no trial has a finite"):
        narrow(SPACE, [], metric="sharpe")


def test_narrow_ignores_nan_metrics() -> None:
    trials = [
        Trial(params={"depth": 9}, metrics={"sharpe": math.nan}),
        Trial(params={"depth": 3}, metrics={"sharpe": 1.0}),
    ]
    narrowed = narrow({"depth": SPACE["depth"]}, trials, metric="sharpe", top_k=1)
    assert isinstance(narrowed["depth"], Range) and narrowed["depth"].high < 9


def test_trend_by_parameter() -> None:
    trends = trend_by_parameter(scored(1.0), "sharpe")
    assert trends["depth"].verdict == "higher is better"
    assert trends["depth"].correlation is not None and trends["depth"].correlation > 0.8
    assert trends["depth"].slope == pytest.approx(1.0, rel=0.05)
    assert trends["alpha"].verdict == "no clear effect"
    assert trends["loss"].verdict == "no clear effect"  # 0.5 against a std of ~2.8
    trends = trend_by_parameter(scored(0.01), "sharpe")
    assert trends["loss"].verdict == "choice matters"
    assert trends["loss"].best_value == "huber"
    assert trend_by_parameter(scored(1.0), "sharpe", higher_is_better=False)["depth"].verdict == (
        "lower is better"
    )


def test_recommend() -> None:
    trials = scored(1.0)
    advice = recommend(trials, SPACE, metric="sharpe", top_k=3)
    assert advice.best_params["depth"] == 10 and advice.best_params["loss"] == "huber"
    assert advice.best_value == pytest.approx(10.5)
    assert advice.next_params not in [t.params for t in trials]
    assert advice.next_params["loss"] == "huber"
    assert advice.trends["depth"].verdict == "higher is better"
    assert any(note.startswith("depth: best value is at the top") for note in advice.notes)
    encoded = msgspec.json.encode(advice)
    assert msgspec.json.decode(encoded)["next_space"]["depth"]["type"] == "range"


@pytest.mark.parametrize(
    ("values", "higher", "expected"),
    [
        ([0.5, 0.6, 0.7, 0.8, 0.9], True, "improving"),
        ([0.9, 0.8, 0.7, 0.6, 0.5], True, "declining"),
        ([0.9, 0.8, 0.7, 0.6, 0.5], False, "improving"),
        ([1.0, 1.01, 0.99, 1.0, 1.0], True, "stable"),
        ([0.1, 0.1, 5.0, 1.0, 1.01, 0.99, 1.0, 1.0], True, "stable"),  # only the last 5 count
        ([1.0], True, "stable"),
        ([], True, "stable"),
    ],
)
def test_history_trend(values: list[float], higher: bool, expected: str) -> None:
    assert history_trend(values, higher) == expected
