"""What the registry computes when a dataset file arrives (``services.registry.datasets``):
digest, summary and validation report; refusals of unreadable files; dataset refs."""

from __future__ import annotations

import io

import pytest

from quant.data import frame_to_bytes, load_demo_prices, sha256
from services.registry.datasets import demo_bytes, ingest
from shared.contracts.datasets import parse_ref
from shared.errors import InvalidRequest

KW = {"max_abs_return": 0.5, "max_gap_factor": 3.0}


def test_a_csv_is_summarised_and_validated() -> None:
    frame = load_demo_prices(["AAPL"]).head(200)
    data = frame_to_bytes(frame)
    found = ingest(data, "csv", **KW)
    assert found.sha256 == sha256(data) and found.rows == 200 and found.symbols == ["AAPL"]
    assert found.frequency == "1d" and found.report.ok
    assert any(w.check == "extreme_return" for w in found.report.warnings)  # 2000-09-29
    assert found.start is not None and found.end is not None and found.start < found.end
    # That day's -52% is a log return of -0.73, as extreme as a +108% day: the symmetric check
    # passes it only beyond log(1 + 1.2) = 0.79.
    strict = ingest(data, "csv", max_abs_return=1.2, max_gap_factor=3.0)
    assert not any(w.check == "extreme_return" for w in strict.report.warnings)


def test_parquet_and_refusals() -> None:
    buffer = io.BytesIO()
    load_demo_prices(["IBM"]).head(50).to_parquet(buffer, index=False)
    assert ingest(buffer.getvalue(), "parquet", **KW).rows == 50
    with pytest.raises(InvalidRequest, match="not a readable OHLCV csv"):
        ingest(b"price\n1\n", "csv", **KW)
    with pytest.raises(InvalidRequest, match="parquet"):
        ingest(b"not parquet", "parquet", **KW)
    empty = ingest(b"timestamp,open,high,low,close,volume\n", "csv", **KW)
    assert not empty.report.ok and empty.report.errors[-1].check == "empty"


def test_the_demo_file_is_canonical() -> None:
    first = demo_bytes()
    assert first == demo_bytes()  # same bytes, same digest, same dataset on every start
    assert first.startswith(b"timestamp,symbol,open,high,low,close,volume\n")
    assert ingest(first, "csv", **KW).symbols == ["AAPL", "GOOG", "IBM", "MSFT"]


def test_refs() -> None:
    digest = "ab" * 32
    assert parse_ref("demo-us-stocks") == ("demo-us-stocks", "")
    assert parse_ref(f"sha256:{digest.upper()}") == ("", digest)
    assert parse_ref(digest) == ("", digest)
