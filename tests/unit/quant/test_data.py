"""Demo data, file reading and normalisation, canonical bytes and dataset summaries."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from quant.data import (
    DEFAULT_SYMBOL,
    describe,
    frame_digest,
    frame_to_bytes,
    infer_frequency,
    load_demo_prices,
    periods_per_year,
    read_ohlcv,
    sha256,
)


def test_demo_prices_are_normalised_and_split_adjusted() -> None:
    frame = load_demo_prices(["AAPL", "IBM"])
    assert list(frame.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert frame["symbol"].tolist() == sorted(frame["symbol"].tolist())
    aapl = frame[frame["symbol"] == "AAPL"]
    assert aapl["timestamp"].is_monotonic_increasing
    assert len(aapl) == 3270
    first = aapl.iloc[0]
    # Raw 2000-03-01 row: close 130.31, adj close 4.186663, volume 9,616,100.
    assert first["close"] == pytest.approx(4.186663)
    factor = 4.186663 / 130.31
    assert first["open"] == pytest.approx(118.56 * factor)
    assert first["close"] * first["volume"] == pytest.approx(130.31 * 9_616_100)


def test_demo_unknown_symbol() -> None:
    with pytest.raises(ValueError, match="unknown demo symbols \\['ZZZ'\\]"):
        load_demo_prices(["AAPL", "ZZZ"])


def test_read_csv_with_aliases_and_tz() -> None:
    text = (
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02T15:00:00-05:00,1,2,0.5,1.5,100\n"
        "2024-01-03T15:00:00-05:00,1.5,2,1,1.8,200\n"
    )
    frame = read_ohlcv(text.encode(), "csv")
    assert frame["symbol"].unique().tolist() == [DEFAULT_SYMBOL]
    assert frame["timestamp"].dtype == "datetime64[ns]"
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-02 20:00:00")  # in UTC, naive
    assert frame["volume"].dtype == "float64"


def test_read_applies_adj_close_and_keeps_row_order() -> None:
    text = (
        "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n"
        "X,2024-01-03,10,11,9,10,100,5\n"
        "X,2024-01-02,10,11,9,10,100,5\n"
    )
    frame = read_ohlcv(text.encode(), "csv")
    assert "adj_close" not in frame.columns
    assert frame["close"].tolist() == [5.0, 5.0]
    assert frame["volume"].tolist() == [200.0, 200.0]
    assert frame["timestamp"].iloc[0] > frame["timestamp"].iloc[1]  # as uploaded
    assert read_ohlcv(text.encode(), "csv", sort=True)["timestamp"].is_monotonic_increasing


def test_read_errors() -> None:
    with pytest.raises(ValueError, match="no timestamp column"):
        read_ohlcv(b"a,b\n1,2\n", "csv")
    with pytest.raises(ValueError, match="cannot read parquet"):
        read_ohlcv(b"not parquet", "parquet")
    with pytest.raises(ValueError, match="unknown data format"):
        read_ohlcv(b"x", "xlsx")  # type: ignore[arg-type]


def test_parquet_round_trip_and_canonical_digest() -> None:
    frame = load_demo_prices(["MSFT"]).iloc[:50]
    back = read_ohlcv(frame_to_bytes(frame, "parquet"), "parquet")
    pd.testing.assert_frame_equal(back, frame)
    shuffled = frame.sample(frac=1.0, random_state=0)[list(reversed(frame.columns))]
    assert frame_to_bytes(shuffled) == frame_to_bytes(frame)
    assert frame_digest(shuffled) == sha256(frame_to_bytes(frame))
    changed = frame.copy()
    changed.loc[3, "close"] += 1e-9
    assert frame_digest(changed) != frame_digest(frame)


def test_canonical_csv_reads_back_identically() -> None:
    frame = load_demo_prices(["IBM"]).iloc[:30]
    data = frame_to_bytes(frame)
    assert data.startswith(b"timestamp,symbol,open,high,low,close,volume\n2000-03-01T00:00:00,IBM,")
    pd.testing.assert_frame_equal(read_ohlcv(data, "csv"), frame)


def test_sha256_known_value() -> None:
    assert sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    n = len(index)
    return pd.DataFrame(
        {
            "timestamp": index,
            "symbol": "A",
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": np.linspace(1, 2, n),
            "volume": 1.0,
        }
    )


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2024-01-01", periods=30), "1d"),
        (pd.date_range("2024-01-01", periods=30, freq="W"), "1w"),
        (pd.date_range("2024-01-01", periods=30, freq="h"), "1h"),
        (pd.date_range("2024-01-01", periods=30, freq="5min"), "5min"),
        (pd.date_range("2024-01-01", periods=1, freq="D"), "unknown"),
    ],
)
def test_infer_frequency(index: pd.DatetimeIndex, expected: str) -> None:
    assert infer_frequency(_frame(index)) == expected


def test_describe_demo() -> None:
    summary = describe(load_demo_prices())
    assert summary.symbols == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert summary.start == "2000-03-01T00:00:00"
    assert summary.end == "2013-03-01T00:00:00"
    assert summary.rows == 3 * 3270 + 2148 + 196
    assert summary.frequency == "1d"


def test_periods_per_year() -> None:
    assert periods_per_year("1d") == 252
    assert periods_per_year("1w") == 52
    assert periods_per_year("1h") == pytest.approx(252 * 6.5)
    assert periods_per_year("5min") == pytest.approx(252 * 78)
    assert periods_per_year("weird") == 252


def test_read_csv_from_buffer_of_demo_like_bytes() -> None:
    buffer = io.StringIO()
    load_demo_prices(["FB"]).to_csv(buffer, index=False)
    frame = read_ohlcv(buffer.getvalue().encode(), "csv", sort=True)
    assert describe(frame).symbols == ["FB"]
    assert len(frame) == 196
