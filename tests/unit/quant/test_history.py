"""Reading a trial history: trend over the last runs, parameter effects, recommendations."""

from __future__ import annotations

from quant.history import analyse, observed_space
from quant.search import Choice, Range
from shared.contracts.quant import TrialRecord


def record(i: int, sharpe: float, **params: object) -> TrialRecord:
    return TrialRecord(task_id=f"t{i}", task_type="train_model", group="m", at=float(i),
                       params=params, metrics={"sharpe": sharpe, "rmse": 1.0 / (1 + i)})


def test_the_observed_space_spans_what_was_tried() -> None:
    records = [record(0, 0.1, alpha=0.01, depth=3, est="ridge"),
               record(1, 0.2, alpha=10.0, depth=5, est="lasso"),
               record(2, 0.3, alpha=1.0, depth=3, est="ridge", flag=True)]
    space = observed_space(records)
    assert space["alpha"] == Range(low=0.01, high=10.0, log=True, integer=False)
    assert space["depth"] == Range(low=3, high=5, integer=True)
    assert space["est"] == Choice(values=["ridge", "lasso"])
    assert space["flag"] == Choice(values=[True])


def test_improving_declining_and_stable() -> None:
    rising = [record(i, 0.1 * i, alpha=float(i + 1)) for i in range(8)]
    falling = [record(i, 1.0 - 0.1 * i, alpha=float(i + 1)) for i in range(8)]
    flat = [record(i, 0.5 + (0.001 if i % 2 else 0.0), alpha=float(i + 1)) for i in range(8)]
    kw = {"task_type": "train_model", "group": "m", "metric": "sharpe", "window": 5}
    assert analyse(rising, higher_is_better=True, **kw).trend == "improving"  # type: ignore[arg-type]
    assert analyse(falling, higher_is_better=True, **kw).trend == "declining"  # type: ignore[arg-type]
    assert analyse(flat, higher_is_better=True, **kw).trend == "stable"  # type: ignore[arg-type]
    # rmse falls as runs go on: improving when lower is better
    rmse = analyse(rising, metric="rmse", higher_is_better=False, task_type="train_model",
                   group="m", window=5)
    assert rmse.trend == "improving"


def test_effects_best_and_recommendation() -> None:
    records = [record(i, float(i), alpha=float(i + 1), est="ridge") for i in range(6)]
    reply = analyse(records, task_type="train_model", group="m", metric="sharpe",
                    higher_is_better=True)
    assert reply.trials == 6 and reply.best is not None and reply.best.task_id == "t5"
    assert reply.parameters["alpha"].verdict == "higher is better"
    assert reply.parameters["alpha"].correlation is not None
    assert 1.0 <= float(reply.recommended["alpha"]) <= 6.0  # type: ignore[arg-type]
    assert reply.recommended["est"] == "ridge"
    assert "est" not in reply.parameters  # never varied: no effect to report
    assert any("alpha" in n and "raising" in n for n in reply.notes)  # best at the top edge
    only = analyse(records, task_type="train_model", group="m", metric="sharpe",
                   higher_is_better=True, parameter="alpha")
    assert set(only.parameters) == {"alpha"}


def test_no_scored_trial_gives_an_empty_answer_not_an_error() -> None:
    records = [TrialRecord(task_id="t", task_type="backtest", group="g", at=1.0,
                           params={"lookback": 5}, metrics={})]
    reply = analyse(records, task_type="backtest", group="g", metric="sharpe",
                    higher_is_better=True)
    assert reply.best is None and reply.recommended == {} and reply.trend == "stable"
    assert reply.notes == ["no trial has a finite 'sharpe'"]
