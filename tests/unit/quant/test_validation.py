"""Each check finds its planted defect; clean and real data pass without errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant.data import load_demo_prices
from quant.validation import MAX_LISTED, validate_ohlcv
from shared.contracts.datasets import Issue, ValidationReport


def clean(n: int = 30, symbols: tuple[str, ...] = ("AAA", "BBB")) -> pd.DataFrame:
    parts = []
    for k, symbol in enumerate(symbols):
        close = 50 + k + np.sin(np.arange(n)) + np.arange(n) * 0.1
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.bdate_range("2024-01-01", periods=n),
                    "symbol": symbol,
                    "open": close - 0.2,
                    "high": close + 1.0,
                    "low": close - 1.0,
                    "close": close,
                    "volume": 1000.0 + np.arange(n),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def checks(issues: list[Issue]) -> set[str]:
    return {i.check for i in issues}


def only_error(report: ValidationReport, check: str, rows: list[int]) -> None:
    assert not report.ok
    assert checks(report.errors) == {check}
    issue = report.errors[0]
    assert issue.rows == rows
    assert issue.count == len(rows)


def test_clean_frame_is_ok_without_warnings() -> None:
    report = validate_ohlcv(clean())
    assert report.ok
    assert report.errors == [] and report.warnings == []
    assert report.rows == 60 and report.symbols == ["AAA", "BBB"]


def test_missing_columns() -> None:
    report = validate_ohlcv(clean().drop(columns=["volume", "low"]))
    assert not report.ok
    assert report.errors[0].check == "missing_columns"
    assert "low" in report.errors[0].message and "volume" in report.errors[0].message


def test_non_finite() -> None:
    frame = clean()
    frame.loc[4, "close"] = np.nan
    frame.loc[7, "volume"] = np.inf
    only_error(validate_ohlcv(frame), "non_finite", [4, 7])


def test_non_positive_price() -> None:
    frame = clean()
    frame.loc[5, ["open", "low"]] = [0.0, -1.0]
    only_error(validate_ohlcv(frame), "non_positive_price", [5])


def test_high_below_body() -> None:
    frame = clean()
    frame.loc[6, "high"] = frame.loc[6, "close"] - 0.01
    only_error(validate_ohlcv(frame), "high_below_body", [6])


def test_low_above_body() -> None:
    frame = clean()
    frame.loc[8, "low"] = frame.loc[8, "open"] + 0.01
    only_error(validate_ohlcv(frame), "low_above_body", [8])


def test_negative_volume() -> None:
    frame = clean()
    frame.loc[33, "volume"] = -5.0
    only_error(validate_ohlcv(frame), "negative_volume", [33])
    assert validate_ohlcv(frame).errors[0].timestamps == [str(frame.loc[33, "timestamp"])]


def test_duplicate_timestamp() -> None:
    frame = clean()
    frame.loc[10, "timestamp"] = frame.loc[9, "timestamp"]
    report = validate_ohlcv(frame)
    assert "duplicate_timestamp" in checks(report.errors)
    dup = next(i for i in report.errors if i.check == "duplicate_timestamp")
    assert dup.symbol == "AAA" and dup.rows == [10]


def test_same_timestamp_in_two_symbols_is_fine() -> None:
    assert validate_ohlcv(clean()).ok  # every timestamp appears once per symbol


def test_unordered_timestamp() -> None:
    frame = clean()
    frame.loc[[12, 13], "timestamp"] = frame.loc[[13, 12], "timestamp"].to_numpy()
    only_error(validate_ohlcv(frame), "unordered_timestamp", [13])


def test_rows_are_capped_but_counted() -> None:
    frame = clean(n=60)
    frame.loc[:49, "volume"] = -1.0
    issue = validate_ohlcv(frame).errors[0]
    assert issue.count == 50
    assert len(issue.rows) == MAX_LISTED and len(issue.timestamps) == MAX_LISTED


def test_calendar_gap_warning_judged_in_business_days() -> None:
    frame = clean(symbols=("AAA",))
    # Dropping 2 business days makes a 3-business-day step: tolerated at the default factor 3.
    assert validate_ohlcv(frame.drop(index=[10, 11])).warnings == []
    gapped = frame.drop(index=[10, 11, 12]).reset_index(drop=True)
    report = validate_ohlcv(gapped)
    assert report.ok
    assert checks(report.warnings) == {"calendar_gap"}
    assert report.warnings[0].rows == [10]
    assert validate_ohlcv(gapped, max_gap_factor=4).warnings == []


def test_gap_warning_for_intraday_uses_median_spacing() -> None:
    frame = clean(n=40, symbols=("AAA",))
    frame["timestamp"] = pd.date_range("2024-01-01 09:30", periods=40, freq="5min")
    frame = frame.drop(index=range(20, 25)).reset_index(drop=True)  # a 30-minute hole
    report = validate_ohlcv(frame)
    assert checks(report.warnings) == {"calendar_gap"}
    assert report.warnings[0].rows == [20]


def test_flat_close_warning() -> None:
    frame = clean()
    frame.loc[frame["symbol"] == "BBB", ["open", "high", "low", "close"]] = 50.0
    report = validate_ohlcv(frame)
    assert report.ok
    flat = [i for i in report.warnings if i.check == "flat_close"]
    assert [i.symbol for i in flat] == ["BBB"]


def test_extreme_return_warning() -> None:
    frame = clean()
    frame.loc[15, ["open", "close"]] = frame.loc[15, "close"] * 2.5
    frame.loc[15, "high"] = frame.loc[15, "close"] + 1
    report = validate_ohlcv(frame)
    assert report.ok
    extreme = [i for i in report.warnings if i.check == "extreme_return"]
    assert len(extreme) == 1 and extreme[0].rows == [15, 16]  # up, then back down
    assert validate_ohlcv(frame, max_abs_return=2.0).warnings == []


@pytest.mark.parametrize("symbols", [None, ["AAPL", "MSFT"]])
def test_real_demo_data_has_no_errors(symbols: list[str] | None) -> None:
    report = validate_ohlcv(load_demo_prices(symbols))
    assert report.ok, report.errors
    # The market closed for four days after 2001-09-11: a real gap the check should see.
    gaps = [i for i in report.warnings if i.check == "calendar_gap"]
    assert gaps and all(i.timestamps == ["2001-09-17 00:00:00"] for i in gaps)


def test_unparseable_timestamp_is_non_finite_not_a_crash() -> None:
    frame = clean(symbols=("AAA",))
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d").astype(object)
    frame.loc[3, "timestamp"] = "not a date"
    report = validate_ohlcv(frame)
    assert checks(report.errors) == {"non_finite"}
    assert report.errors[0].rows == [3]
    assert frame.loc[3, "timestamp"] == "not a date"  # the caller's frame is untouched


def test_flat_close_is_found_where_the_std_rounds_above_zero() -> None:
    frame = clean()
    frame.loc[frame["symbol"] == "BBB", ["open", "high", "low", "close"]] = 0.1
    assert np.nanstd(frame.loc[frame["symbol"] == "BBB", "close"].to_numpy()) > 0  # rounding
    flat = [i for i in validate_ohlcv(frame).warnings if i.check == "flat_close"]
    assert [i.symbol for i in flat] == ["BBB"]


@pytest.mark.parametrize("factor", [0.5, 2.0, 1 / 1.6, 1.6])
def test_extreme_return_is_symmetric_on_log_returns(factor: float) -> None:
    """A halving (or an unadjusted 2:1 split) is as extreme as a doubling."""
    frame = clean(symbols=("AAA",))
    later = frame.index >= 15
    frame.loc[later, ["open", "high", "low", "close"]] *= factor
    extreme = [i for i in validate_ohlcv(frame).warnings if i.check == "extreme_return"]
    assert len(extreme) == 1 and extreme[0].rows == [15]
