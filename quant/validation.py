"""OHLCV data checks: structural errors that make data unusable, and warnings worth a look.

Errors (``report.ok`` is False): missing required columns, NaN/inf values or unparseable
timestamps, non-positive prices, ``high < max(open, close)``, ``low > min(open, close)``,
negative volume, duplicate timestamps within a symbol, timestamps going backwards within a symbol.

Warnings: calendar gaps, flat (zero-variance) close series, extreme one-bar returns.

Gaps are judged in *expected steps*. For daily data (see ``data.infer_frequency``) a step is a
business day (Monday-Friday, no holiday calendar): consecutive trading days are 1 step apart,
Friday to Monday is 1, a single holiday makes 2. For any other frequency a step is the median bar
spacing of the symbol. A gap is reported when it is more than ``max_gap_factor`` steps, so the
default 3 tolerates a holiday next to a weekend and flags longer outages.

Row indices are positions (0-based) in the frame as given; every issue lists at most
``MAX_LISTED`` of them (and their timestamps) while ``count`` has the full number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant.data import OHLCV_COLUMNS, infer_frequency
from shared.contracts.datasets import Issue, ValidationReport

MAX_LISTED = 20
REQUIRED_COLUMNS = ("timestamp", *OHLCV_COLUMNS)
_PRICES = ["open", "high", "low", "close"]


def _issue(
    check: str, message: str, frame: pd.DataFrame, mask: np.ndarray, symbol: str | None = None
) -> Issue | None:
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return None
    listed = positions[:MAX_LISTED]
    stamps = frame["timestamp"].iloc[listed] if "timestamp" in frame.columns else []
    return Issue(
        check=check,
        message=message,
        symbol=symbol,
        rows=[int(p) for p in listed],
        timestamps=[str(t) for t in stamps],
        count=int(positions.size),
    )


def _keep(issues: list[Issue | None]) -> list[Issue]:
    return [i for i in issues if i is not None]


def _row_errors(frame: pd.DataFrame) -> list[Issue]:
    values = frame[list(OHLCV_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad_values = ~np.isfinite(values.to_numpy()).all(axis=1)
    bad_time = frame["timestamp"].isna().to_numpy()
    # Comparisons with NaN are False, so rows already reported as non-finite are not re-reported.
    body_high = np.maximum(values["open"], values["close"])
    body_low = np.minimum(values["open"], values["close"])
    found = [
        ("non_finite", "NaN/inf values or unparseable timestamps", bad_values | bad_time),
        (
            "non_positive_price",
            "open/high/low/close must be > 0",
            (values[_PRICES] <= 0).any(axis=1),
        ),
        ("high_below_body", "high is below max(open, close)", values["high"] < body_high),
        ("low_above_body", "low is above min(open, close)", values["low"] > body_low),
        ("negative_volume", "volume must be >= 0", values["volume"] < 0),
    ]
    return _keep([_issue(check, text, frame, np.asarray(mask)) for check, text, mask in found])


def _order_errors(frame: pd.DataFrame, symbols: pd.Series) -> list[Issue]:
    issues: list[Issue | None] = []
    for symbol, positions in symbols.groupby(symbols, sort=True).indices.items():
        stamps = frame["timestamp"].iloc[positions]
        duplicated = np.zeros(len(frame), dtype=bool)
        duplicated[positions] = stamps.duplicated(keep="first").to_numpy()
        backwards = np.zeros(len(frame), dtype=bool)
        backwards[positions] = (stamps.diff() < pd.Timedelta(0)).to_numpy()
        found = [
            ("duplicate_timestamp", "timestamp repeated within the symbol", duplicated),
            ("unordered_timestamp", "timestamp earlier than the previous row", backwards),
        ]
        issues += [_issue(check, text, frame, mask, str(symbol)) for check, text, mask in found]
    return _keep(issues)


def _gap_steps(stamps: pd.Series, daily: bool) -> np.ndarray:
    """Distance from the previous bar in expected steps (NaN for the first bar)."""
    if daily:
        days = stamps.to_numpy().astype("datetime64[D]")
        steps = np.full(len(days), np.nan)
        valid = np.zeros(len(days), dtype=bool)
        valid[1:] = ~np.isnat(days[:-1]) & ~np.isnat(days[1:])  # NaT is reported elsewhere
        pairs = np.flatnonzero(valid)
        steps[pairs] = np.busday_count(days[pairs - 1], days[pairs])
        return steps
    deltas = stamps.diff()
    median = deltas[deltas > pd.Timedelta(0)].median()
    if pd.isna(median):
        return np.full(len(stamps), np.nan)
    result: np.ndarray = (deltas / median).to_numpy(dtype="float64")
    return result


def _symbol_warnings(
    frame: pd.DataFrame,
    positions: np.ndarray,
    symbol: str,
    *,
    daily: bool,
    max_abs_return: float,
    max_gap_factor: float,
) -> list[Issue]:
    part = frame.iloc[positions]
    stamps = part["timestamp"]
    close = pd.to_numeric(part["close"], errors="coerce").astype("float64")

    def spread(local: np.ndarray) -> np.ndarray:
        full = np.zeros(len(frame), dtype=bool)
        full[positions] = local
        return full

    gaps = _gap_steps(stamps, daily) > max_gap_factor
    # Log returns make the check symmetric: a rise to 1+x and a fall to 1/(1+x) are equally
    # extreme, so a halving or an unadjusted 2:1 split is flagged like a doubling.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_returns = np.log(close / close.shift(1)).abs().to_numpy()
    returns = log_returns > np.log1p(max_abs_return)
    finite = close.to_numpy()[np.isfinite(close.to_numpy())]
    # The range, not the standard deviation: the std of identical floats can come out as 1e-17.
    flat = len(finite) > 1 and float(np.ptp(finite)) == 0.0
    unit = "business days" if daily else "median bar spacings"
    found = [
        ("calendar_gap", f"more than {max_gap_factor:g} {unit} since the previous bar", gaps),
        ("extreme_return", f"close-to-close move beyond x{1 + max_abs_return:g} or "
                           f"/{1 + max_abs_return:g} (|log return| > log(1+{max_abs_return:g}))",
         returns),
        ("flat_close", "close never changes (zero variance)", np.full(len(positions), flat)),
    ]
    return _keep([_issue(check, text, frame, spread(mask), symbol) for check, text, mask in found])


def validate_ohlcv(
    frame: pd.DataFrame, *, max_abs_return: float = 0.5, max_gap_factor: float = 3.0
) -> ValidationReport:
    """Check an OHLCV frame (normalised column names, any row order); see the module docstring.

    Parameters:
        max_abs_return: a one-bar close-to-close rise above this (0.5: +50%), or the matching
            fall (to 1/1.5 of the price), is an ``extreme_return`` warning: the check is on
            absolute log returns, so it treats rises and falls alike.
        max_gap_factor: a gap of more than this many expected steps is a ``calendar_gap``
            warning.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    symbols = frame["symbol"].astype(str) if "symbol" in frame.columns else None
    names = sorted(symbols.unique().tolist()) if symbols is not None else []
    if missing:
        issue = Issue(
            check="missing_columns",
            message=f"missing required columns {missing}",
            count=len(missing),
        )
        return ValidationReport(errors=[issue], rows=len(frame), symbols=names)
    if symbols is None:
        symbols = pd.Series("UNKNOWN", index=frame.index)
    # Unparseable timestamps become NaT (reported as non_finite) instead of breaking the checks.
    frame = frame.reset_index(drop=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], errors="coerce")
    symbols = symbols.reset_index(drop=True)
    errors = _row_errors(frame) + _order_errors(frame, symbols)
    daily = infer_frequency(frame.assign(symbol=symbols)) == "1d"
    warnings: list[Issue] = []
    for symbol, positions in symbols.groupby(symbols, sort=True).indices.items():
        warnings += _symbol_warnings(
            frame,
            np.sort(positions),
            str(symbol),
            daily=daily,
            max_abs_return=max_abs_return,
            max_gap_factor=max_gap_factor,
        )
    return ValidationReport(
        errors=errors, warnings=warnings, rows=len(frame), symbols=sorted(set(symbols))
    )
