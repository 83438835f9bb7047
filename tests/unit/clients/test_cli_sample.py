"""``quantops datasets sample``: the walkthroughs' sample files come from the shipped prices,
offline, and a broken row is broken the way validation names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from quant.data import read_ohlcv
from quant.validation import validate_ohlcv


def test_sample_writes_the_last_bars_and_breaks_the_named_row(tmp_path: Path) -> None:
    path = tmp_path / "ibm-recent.csv"
    assert main(["datasets", "sample", str(path), "--break-row", "42"]) == 0
    frame = read_ohlcv(path.read_bytes(), "csv")
    assert len(frame) == 500 and set(frame["symbol"]) == {"IBM"}
    assert str(frame["timestamp"].max())[:10] == "2013-03-01"
    report = validate_ohlcv(frame)
    assert [(e.check, e.rows) for e in report.errors] == [("low_above_body", [42])]


def test_sample_of_two_symbols_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    assert main(["datasets", "sample", str(path), "--symbols", "AAPL,MSFT", "--last", "50"]) == 0
    frame = read_ohlcv(path.read_bytes(), "csv")
    assert len(frame) == 100 and not validate_ohlcv(frame).errors


def test_sample_refuses_unknown_symbols_and_rows(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "sample", str(tmp_path / "x.csv"), "--symbols", "NOPE"]) == 2
    assert "unknown demo symbols" in capsys.readouterr().err
    assert main(["datasets", "sample", str(tmp_path / "x.csv"), "--break-row", "9999"]) == 2
    assert not (tmp_path / "x.csv").exists()
