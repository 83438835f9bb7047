"""OHLCV frames: the bundled demo prices, reading uploaded files, canonical bytes and summaries.

A *normalised* frame has the columns ``timestamp`` (tz-naive ``datetime64``), ``symbol`` (str),
``open, high, low, close, volume`` (float), plus any extra columns the source had. Functions that
compute on frames sort by symbol then timestamp themselves; readers keep the file's row order so
that validation can report what was actually uploaded.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
from typing import Final, Literal

import msgspec
import numpy as np
import pandas as pd

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
KEY_COLUMNS = ("timestamp", "symbol")
DEFAULT_SYMBOL = "UNKNOWN"

_TIMESTAMP_ALIASES = ("timestamp", "date", "datetime", "time", "ts")
_SYMBOL_ALIASES = ("symbol", "ticker", "instrument", "asset")
_DEMO_RESOURCE = ("bokeh_sampledata", "_data/stocks.csv.gz")


class DatasetSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What ``describe`` says about a frame: JSON-friendly, for dataset metadata."""

    symbols: list[str]
    start: str | None
    end: str | None
    rows: int
    frequency: str


def _normalise_name(name: object) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _rename_columns(frame: pd.DataFrame) -> pd.DataFrame:
    renamed = frame.rename(columns=_normalise_name)
    mapping: dict[str, str] = {}
    for target, aliases in (("timestamp", _TIMESTAMP_ALIASES), ("symbol", _SYMBOL_ALIASES)):
        if target in renamed.columns:
            continue
        found = next((a for a in aliases if a in renamed.columns), None)
        if found is not None:
            mapping[found] = target
    renamed = renamed.rename(columns=mapping)
    if "adjclose" in renamed.columns and "adj_close" not in renamed.columns:
        renamed = renamed.rename(columns={"adjclose": "adj_close"})
    return renamed


def _to_naive_timestamps(values: pd.Series) -> pd.Series:
    # Mixed venues (``Z`` and ``+01:00`` in one column) are only comparable in one zone; UTC
    # is the one that never jumps. Naive timestamps are taken as UTC already.
    try:
        parsed = pd.to_datetime(values, utc=True)
        return parsed.dt.tz_localize(None).astype("datetime64[ns]")
    except (ValueError, TypeError, OverflowError) as e:  # OutOfBoundsDatetime is a ValueError
        raise ValueError(f"cannot parse the timestamp column: {e}") from e


def _apply_adjustment(frame: pd.DataFrame) -> pd.DataFrame:
    # Split/dividend adjustment keeps returns honest across corporate actions; volume moves the
    # other way so that traded value (price * volume) is unchanged.
    factor = frame["adj_close"] / frame["close"]
    out = frame.copy()
    for column in ("open", "high", "low", "close"):
        if column in out.columns:
            out[column] = out[column] * factor
    if "volume" in out.columns:
        out["volume"] = out["volume"] / factor
    return out.drop(columns=["adj_close"])


def normalise_ohlcv(raw: pd.DataFrame, *, sort: bool = False) -> pd.DataFrame:
    """Rename columns to the canonical set, parse timestamps, add ``symbol`` if absent.

    An ``adj_close`` column, when present next to ``close``, is applied as a split/dividend
    adjustment and then dropped. Missing OHLCV columns are left missing: ``validate_ohlcv``
    reports them. Raises ``ValueError`` if no timestamp column can be found or parsed.
    """
    frame = _rename_columns(raw)
    if "timestamp" not in frame.columns:
        raise ValueError(
            f"no timestamp column; expected one of {list(_TIMESTAMP_ALIASES)}, "
            f"got {list(raw.columns)}"
        )
    frame["timestamp"] = _to_naive_timestamps(frame["timestamp"])
    if "symbol" not in frame.columns:
        frame["symbol"] = DEFAULT_SYMBOL
    frame["symbol"] = frame["symbol"].astype(str)
    for column in OHLCV_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    if "adj_close" in frame.columns and "close" in frame.columns:
        frame["adj_close"] = pd.to_numeric(frame["adj_close"], errors="coerce")
        frame = _apply_adjustment(frame)
    ordered = [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS) if c in frame.columns]
    frame = frame[ordered + [c for c in frame.columns if c not in ordered]]
    return sort_frame(frame) if sort else frame.reset_index(drop=True)


def sort_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by symbol then timestamp (stable, so duplicates keep their order), fresh index."""
    return frame.sort_values(["symbol", "timestamp"], kind="mergesort").reset_index(drop=True)


def demo_symbols() -> list[str]:
    """Symbols available in the bundled demo data."""
    return sorted(_load_demo_raw()["symbol"].unique().tolist())


def _load_demo_raw() -> pd.DataFrame:
    package, name = _DEMO_RESOURCE
    resource = importlib.resources.files(package).joinpath(name)
    with resource.open("rb") as handle:
        raw = pd.read_csv(handle, compression="gzip")
    return _rename_columns(raw)


def load_demo_prices(symbols: list[str] | None = None) -> pd.DataFrame:
    """Real daily OHLCV (Quandl WIKI via ``bokeh_sampledata``), split-adjusted and normalised.

    AAPL, IBM and MSFT cover 2000-03-01..2013-03-01, GOOG starts 2004-08-19, FB 2012-05-18.
    Raises ``ValueError`` naming any unknown symbol.
    """
    frame = normalise_ohlcv(_load_demo_raw(), sort=True)
    if symbols is not None:
        unknown = sorted(set(symbols) - set(frame["symbol"].unique()))
        if unknown:
            raise ValueError(f"unknown demo symbols {unknown}; available: {demo_symbols()}")
        frame = frame[frame["symbol"].isin(symbols)].reset_index(drop=True)
    return frame


#: Rows a dataset may decode to (a thousand symbols of twenty years of daily bars fit): every
#: row costs a few hundred bytes in the frames built from it.
MAX_DATASET_ROWS: Final = 5_000_000
#: Bytes a Parquet file may decode to, and columns it may have.
MAX_PARQUET_UNPACKED_BYTES: Final = 1 << 30
MAX_COLUMNS: Final = 256


def check_decoded_size(data: bytes, fmt: str) -> None:
    """Refuse a file that would decode to more rows or bytes than a dataset may hold, before
    decoding it: a small run-length-encoded Parquet file can declare billions of rows. The
    Parquet footer states rows and uncompressed sizes; a CSV row is at least a line."""
    if fmt == "csv":
        rows = data.count(b"\n")
        if rows > MAX_DATASET_ROWS + 1:
            raise ValueError(f"the CSV has {rows} lines; a dataset holds at most "
                             f"{MAX_DATASET_ROWS} rows")
        return
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"cannot read parquet data: {e}") from e
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if meta.num_rows > MAX_DATASET_ROWS or unpacked > MAX_PARQUET_UNPACKED_BYTES \
            or meta.num_columns > MAX_COLUMNS:
        raise ValueError(
            f"the Parquet file decodes to {meta.num_rows} rows, {unpacked} bytes and "
            f"{meta.num_columns} columns; a dataset holds at most {MAX_DATASET_ROWS} rows, "
            f"{MAX_PARQUET_UNPACKED_BYTES} bytes and {MAX_COLUMNS} columns")


def read_ohlcv(data: bytes, fmt: Literal["csv", "parquet"], *, sort: bool = False) -> pd.DataFrame:
    """Parse an uploaded CSV or Parquet file into a normalised frame (see ``normalise_ohlcv``).

    Parquet needs ``pyarrow``. Raises ``ValueError`` for an unknown format or unreadable bytes.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown data format {fmt!r}; expected 'csv' or 'parquet'")
    check_decoded_size(data, fmt)
    try:
        raw = pd.read_csv(io.BytesIO(data)) if fmt == "csv" else pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, UnicodeDecodeError) as e:
        # pandas' ParserError/EmptyDataError and pyarrow's ArrowInvalid are ValueErrors.
        raise ValueError(f"cannot read {fmt} data: {e}") from e
    return normalise_ohlcv(raw, sort=sort)


def frame_to_bytes(frame: pd.DataFrame, fmt: Literal["csv", "parquet"] = "csv") -> bytes:
    """Serialise a frame; the CSV form is canonical (same data -> same bytes -> same digest).

    Canonical CSV: canonical columns first then the rest alphabetically, rows sorted by symbol
    and timestamp, ISO timestamps, shortest round-trip floats, ``\\n`` line endings, no index.
    """
    ordered = [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS) if c in frame.columns]
    extra = sorted(c for c in frame.columns if c not in ordered)
    canonical = frame[ordered + extra]
    if set(KEY_COLUMNS) <= set(canonical.columns):
        canonical = sort_frame(canonical)
    if fmt == "parquet":
        buffer = io.BytesIO()
        canonical.to_parquet(buffer, index=False)
        return buffer.getvalue()
    if fmt != "csv":
        raise ValueError(f"unknown data format {fmt!r}; expected 'csv' or 'parquet'")
    text: str = canonical.to_csv(index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S")
    return text.encode("utf-8")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the content address of a dataset or model."""
    return hashlib.sha256(data).hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """Content address of a frame: SHA-256 of its canonical CSV bytes."""
    return sha256(frame_to_bytes(frame, "csv"))


def infer_frequency(frame: pd.DataFrame) -> str:
    """Name of the typical bar spacing: ``"1d"``, ``"1w"``, ``"1mo"``, ``"5min"``, ``"1h"``...

    Uses the median spacing within symbols, so weekends and holidays do not matter; daily data
    anywhere between 20 hours and 4 days median spacing is ``"1d"``. ``"unknown"`` if fewer than
    two bars per symbol.
    """
    if frame.empty or "timestamp" not in frame.columns:
        return "unknown"
    keys = frame["symbol"] if "symbol" in frame.columns else pd.Series(0, index=frame.index)
    ordered = frame.assign(_key=keys).sort_values(["_key", "timestamp"], kind="mergesort")
    steps = ordered.groupby("_key", sort=False)["timestamp"].diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        return "unknown"
    seconds = float(steps.median().total_seconds())
    return _frequency_name(seconds)


def _frequency_name(seconds: float) -> str:
    day = 86_400.0
    if 20 * 3600 <= seconds <= 4 * day:
        return "1d"
    if 5 * day <= seconds <= 8 * day:
        return "1w"
    if 27 * day <= seconds <= 32 * day:
        return "1mo"
    if seconds >= day:
        return f"{round(seconds / day)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60:
        return f"{round(seconds / 60)}min"
    return f"{max(1, round(seconds))}s"


def describe(frame: pd.DataFrame) -> DatasetSummary:
    """Symbols, first and last timestamp (ISO), row count and inferred bar frequency."""
    symbols = sorted(frame["symbol"].astype(str).unique().tolist()) if "symbol" in frame else []
    start = end = None
    if "timestamp" in frame.columns:
        valid = pd.to_datetime(frame["timestamp"], errors="coerce").dropna()
        if len(valid):
            start, end = valid.min().isoformat(), valid.max().isoformat()
    return DatasetSummary(
        symbols=symbols, start=start, end=end, rows=len(frame), frequency=infer_frequency(frame)
    )


def periods_per_year(frequency: str) -> float:
    """Bars per year for annualising metrics (equity sessions: 252 days of 6.5 hours).

    Unrecognised names give 252, the daily convention.
    """
    table = {"1d": 252.0, "1w": 52.0, "1mo": 12.0}
    if frequency in table:
        return table[frequency]
    minutes_per_year = 252 * 390.0
    for suffix, minutes in (("min", 1.0), ("h", 60.0)):
        number = frequency.removesuffix(suffix)
        if number != frequency and number.isdigit() and int(number) > 0:
            return minutes_per_year / (int(number) * minutes)
    return 252.0


def finite_mask(values: pd.DataFrame) -> np.ndarray:
    """Rows whose every value is a finite number (no NaN, no +-inf)."""
    result: np.ndarray = np.isfinite(values.to_numpy(dtype="float64")).all(axis=1)
    return result
