"""The CPU half of the quant tasks: plain functions that run in the executor's worker processes
(``ctx.run_in_process``), taking and returning picklable Structs and bytes.

Each job runs with BLAS/OpenMP limited to one thread: the executor's worker pool is the unit of
CPU parallelism, and a histogram-boosting fit spreading over every core would make two workers
(or two executors) fight over the same cores instead of adding capacity.

Parsed datasets are kept per worker process by digest (a sweep's trials parse the file once
per worker), in the file's row order with a ``_row`` column so that validation findings name the
rows of the uploaded file.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC

import msgspec
import pandas as pd
from threadpoolctl import threadpool_limits

from quant.data import infer_frequency, periods_per_year, read_ohlcv
from quant.validation import validate_ohlcv
from shared.contracts.datasets import ValidationReport
from shared.tasks import report_progress

ROW = "_row"
_FRAMES: OrderedDict[str, pd.DataFrame] = OrderedDict()
_MAX_FRAMES = 4


class DataErrors(ValueError):
    """The selected data fails validation; the message lists the offending rows."""


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Which part of which file: ``label`` names it in messages (the dataset's name)."""

    sha256: str
    format: str = "csv"
    label: str = ""
    symbols: list[str] | None = None
    start: str | None = None
    end: str | None = None
    max_abs_return: float = 0.5
    max_gap_factor: float = 3.0


def parsed(sha256: str, data: bytes, fmt: str) -> pd.DataFrame:
    """The file as a normalised frame in file order (``_row`` = position in the file)."""
    frame = _FRAMES.get(sha256)
    if frame is None:
        frame = read_ohlcv(data, fmt)  # type: ignore[arg-type]  # checked at upload
        frame[ROW] = range(len(frame))
        _FRAMES[sha256] = frame
        while len(_FRAMES) > _MAX_FRAMES:
            _FRAMES.popitem(last=False)
    _FRAMES.move_to_end(sha256)
    return frame


def _bound(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert(UTC).tz_localize(None) if stamp.tzinfo else stamp


def select(frame: pd.DataFrame, sel: Selection, *, from_start: bool = True) -> pd.DataFrame:
    """Rows of the selected symbols up to ``end`` (and from ``start`` unless ``from_start`` is
    False: features may warm up on earlier bars), in file order."""
    out = frame
    if sel.symbols:
        unknown = sorted(set(sel.symbols) - set(frame["symbol"].unique()))
        if unknown:
            raise ValueError(f"dataset {sel.label or sel.sha256[:12]} has no symbols {unknown}; "
                             f"it has {sorted(frame['symbol'].unique())}")
        out = out[out["symbol"].isin(sel.symbols)]
    if sel.start and from_start:
        out = out[out["timestamp"] >= _bound(sel.start)]
    if sel.end:
        out = out[out["timestamp"] <= _bound(sel.end)]
    if out.empty:
        raise ValueError(f"no rows of dataset {sel.label or sel.sha256[:12]} in the selection "
                         f"(symbols {sel.symbols}, {sel.start} .. {sel.end})")
    return out.reset_index(drop=True)


def validate(frame: pd.DataFrame, sel: Selection) -> ValidationReport:
    """Validate a selection; row numbers in the report are the file's (``_row``)."""
    report = validate_ohlcv(frame.drop(columns=[ROW]), max_abs_return=sel.max_abs_return,
                            max_gap_factor=sel.max_gap_factor)
    rows, symbols = frame[ROW].to_numpy(), frame["symbol"].astype(str).to_numpy()

    def remap(issues: list) -> list:  # type: ignore[type-arg]
        # Row-level checks do not say which symbol; the listed rows do.
        return [msgspec.structs.replace(
            i, rows=[int(rows[r]) for r in i.rows],
            symbol=i.symbol or ",".join(sorted({symbols[r] for r in i.rows})) or None)
            for i in issues]

    return msgspec.structs.replace(report, errors=remap(report.errors),
                                   warnings=remap(report.warnings))


def describe_issues(report: ValidationReport, label: str) -> str:
    """One message naming every error, its symbol and its first offending rows."""
    parts = []
    for issue in report.errors:
        shown = ", ".join(f"{r} ({t})" for r, t in zip(issue.rows, issue.timestamps,
                                                        strict=False)) or "-"
        more = f" and {issue.count - len(issue.rows)} more" if issue.count > len(issue.rows) \
            else ""
        where = f" [{issue.symbol}]" if issue.symbol else ""
        parts.append(f"{issue.check}{where}: {issue.message}; rows {shown}{more}")
    return (f"dataset {label} fails validation ({len(report.errors)} errors; row numbers are "
            f"0-based positions in the uploaded file): " + " | ".join(parts))


def warning_lines(report: ValidationReport) -> list[str]:
    return [f"{w.check}{f' [{w.symbol}]' if w.symbol else ''}: {w.message} "
            f"({w.count} rows, first at {w.timestamps[0] if w.timestamps else '?'})"
            for w in report.warnings]


def checked(data: bytes, sel: Selection) -> tuple[pd.DataFrame, ValidationReport]:
    """The selection, validated: ``DataErrors`` if it has errors (the frame keeps ``_row``)."""
    frame = select(parsed(sel.sha256, data, sel.format), sel)
    report = validate(frame, sel)
    if report.errors:
        raise DataErrors(describe_issues(report, sel.label or sel.sha256[:12]))
    return frame, report


def annualisation(frame: pd.DataFrame) -> tuple[str, float]:
    frequency = infer_frequency(frame)
    return frequency, periods_per_year(frequency)


def validate_job(data: bytes, sel: Selection) -> dict[str, object]:
    """``validate_dataset``: the selection's report (errors do not raise here)."""
    with threadpool_limits(1):
        frame = select(parsed(sel.sha256, data, sel.format), sel)
        report = validate(frame, sel)
        report_progress(1.0, "validated")
        out: dict[str, object] = msgspec.to_builtins(report)
        return out
