"""The in-sample warning of a backtest compares the dataset as well as the dates."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.executor.plugins.quant.tasks.backtest import overlap_warning
from services.executor.plugins.quant.tasks.jobs import BacktestOutput
from shared.contracts.datasets import DatasetInfo
from shared.contracts.registry import VersionInfo

TRAINED = {"model": "m", "version": 1, "created_at": "2020-01-01T00:00:00Z",
           "artifact": {"sha256": "a" * 64, "size_bytes": 1, "bucket": "b",
                        "object_name": "o", "format": "skops"},
           "spec": {"data_start": "2008-01-01T00:00:00Z", "data_end": "2011-12-31T00:00:00Z",
                    "lineage": {"data_sha256": "d" * 64}, "tags": {"dataset": "prices"}}}


def version() -> VersionInfo:
    return msgspec.convert(TRAINED, VersionInfo)


def dataset(name: str, sha256: str) -> DatasetInfo:
    return msgspec.convert({
        "name": name, "sha256": sha256, "format": "csv", "size_bytes": 1, "rows": 1,
        "symbols": ["X"], "start": None, "end": None, "frequency": "1d", "valid": True,
        "report": {"rows": 1}, "bucket": "b", "object_name": "o",
        "created_at": datetime(2020, 1, 1).isoformat() + "Z"}, DatasetInfo)


def window(start: str, end: str) -> BacktestOutput:
    return msgspec.convert({"metrics": {
        "n_periods": 1, "total_return": 0, "annual_return": 0, "annual_volatility": 0,
        "sharpe": 0, "max_drawdown": 0, "profit_factor": None, "hit_rate": 0, "turnover": 0,
        "n_trades": 0, "exposure": 0, "total_cost": 0}, "equity": [], "symbols": ["X"],
        "start": start, "end": end, "frequency": "1d"}, BacktestOutput)


def test_same_dataset_and_overlapping_dates_is_in_sample() -> None:
    for info in (dataset("prices", "e" * 64), dataset("other-name", "d" * 64)):
        warning = overlap_warning(version(), window("2011-01-01", "2011-06-30"), info)
        assert len(warning) == 1 and warning[0].startswith("in-sample"), warning


def test_another_dataset_on_the_same_dates_is_not_in_sample() -> None:
    warning = overlap_warning(version(), window("2011-01-01", "2011-06-30"),
                              dataset("fresh", "f" * 64))
    assert len(warning) == 1 and "in-sample" not in warning[0] and "another dataset" in warning[0]


def test_a_later_window_has_no_warning() -> None:
    assert overlap_warning(version(), window("2012-01-01", "2012-06-30"),
                           dataset("prices", "d" * 64)) == []
