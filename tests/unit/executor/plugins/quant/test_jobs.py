"""The worker-side jobs, run in-process: selection and validation in the file's row numbers,
training output (model bytes, evaluation), and backtests that warm up before their window."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from quant.data import frame_to_bytes, load_demo_prices, sha256
from quant.estimators import load_model
from quant.recipe import Recipe
from quant.specs import EstimatorSpec, WalkForwardSpec
from services.executor.plugins.quant.tasks.jobs import (
    BacktestJob,
    TrainJob,
    backtest_job,
    train_job,
)
from services.executor.plugins.quant.tasks.work import (
    DataErrors,
    Selection,
    checked,
    parsed,
    select,
    validate,
)


def interleaved() -> pd.DataFrame:
    """Two symbols, rows alternating, as an export might have them (not sorted by symbol)."""
    frame = load_demo_prices(["IBM", "MSFT"])
    frame = frame[(frame["timestamp"] >= "2006-01-01") & (frame["timestamp"] < "2010-01-01")]
    return frame.sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()  # file order kept (frame_to_bytes would sort)


def test_findings_name_rows_of_the_uploaded_file() -> None:
    frame = interleaved()
    bad = int(frame.index[(frame["symbol"] == "MSFT") & (frame["timestamp"] == "2008-03-03")][0])
    frame.loc[bad, "volume"] = -1.0
    data = as_csv(frame)
    sel = Selection(sha256=sha256(data), symbols=["MSFT"], start="2008-01-01", label="x")
    window = select(parsed(sel.sha256, data, "csv"), sel)
    report = validate(window, sel)
    assert [i.rows for i in report.errors] == [[bad]]
    with pytest.raises(DataErrors, match=rf"negative_volume \[MSFT\].*rows {bad} \(2008-03-03"):
        checked(data, sel)
    clean = Selection(sha256=sel.sha256, symbols=["IBM"], start="2008-01-01", label="x")
    assert checked(data, clean)[1].ok  # the other symbol is fine
    with pytest.raises(ValueError, match=r"has no symbols \['GE'\]"):
        select(parsed(sel.sha256, data, "csv"), Selection(sha256=sel.sha256, symbols=["GE"]))


def test_train_job_output_is_registrable() -> None:
    data = as_csv(interleaved())
    recipe = Recipe(estimators=[EstimatorSpec(name="ridge")],
                    walk_forward=WalkForwardSpec(n_splits=2, min_train_size=252))
    out = train_job(data, TrainJob(sel=Selection(sha256=sha256(data)), recipe=recipe))
    assert out.symbols == ["IBM", "MSFT"] and out.frequency == "1d"
    assert out.data_start.startswith("2006-01-03") and out.rows == len(interleaved())
    model = load_model(out.model)
    assert model.predict(np.zeros((2, len(out.summary.features)))).shape == (2,)
    doc = msgspec.json.decode(out.evaluation)
    assert len(doc["predictions"]["prediction"]) == out.metrics["n"]
    assert set(doc["importances"]) == set(out.summary.features)
    assert len(doc["folds"]) == 2 and doc["equity"][-1][1] == pytest.approx(
        1 + out.metrics["total_return"])


def test_an_evaluation_backtest_reproduces_the_out_of_sample_metrics() -> None:
    data = as_csv(interleaved())
    sel = Selection(sha256=sha256(data))
    recipe = Recipe(walk_forward=WalkForwardSpec(n_splits=2, min_train_size=252))
    out = train_job(data, TrainJob(sel=sel, recipe=recipe))
    bt = backtest_job(data, BacktestJob(sel=sel, evaluation=out.evaluation, kind="regression",
                                        trading=recipe.trading, costs=recipe.costs))
    assert bt.metrics.sharpe == pytest.approx(out.metrics["sharpe"])
    assert bt.metrics.n_periods == out.metrics["n_periods"]


def test_backtests_warm_up_before_the_window() -> None:
    data = frame_to_bytes(load_demo_prices(["AAPL"]))
    sel = Selection(sha256=sha256(data), start="2010-01-04")
    rule = backtest_job(data, BacktestJob(sel=sel, strategy="ma_crossover",
                                          params={"fast": 20, "slow": 50}))
    assert rule.start.startswith("2010-01-04")  # traded from day one: the averages exist
    assert rule.metrics.exposure == 1.0
    data2 = as_csv(interleaved())
    recipe = Recipe(walk_forward=WalkForwardSpec(n_splits=2, min_train_size=252))
    out = train_job(data2, TrainJob(sel=Selection(sha256=sha256(data2), end="2008-12-31"),
                                    recipe=recipe))
    later = Selection(sha256=sha256(data2), start="2009-01-02")
    bt = backtest_job(data2, BacktestJob(sel=later, model=out.model, recipe=recipe))
    assert bt.start.startswith("2009-01-02") and bt.end.startswith("2009-12-30")
    with pytest.raises(ValueError, match="unknown strategy"):
        backtest_job(data, BacktestJob(sel=sel, strategy="astrology"))
    with pytest.raises(ValueError, match="bad parameters"):
        backtest_job(data, BacktestJob(sel=sel, strategy="momentum", params={"speed": 1}))
