"""Technical features, computed per symbol and without look-ahead.

Every feature at bar t is a function of bars ``<= t`` of the same symbol only: rolling windows,
recursive (``adjust=False``) EMAs, Wilder averages and positive shifts, never ``shift(-k)``,
centred windows or whole-series statistics. The unit tests prove this by mutating the future.

Warm-up bars, where a window is not yet full, are NaN; training drops them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from quant.data import sort_frame
from quant.specs import FEATURE_PARAMS, FeatureSpec

FeatureColumns = dict[str, pd.Series]
FeatureFn = Callable[..., FeatureColumns]


def _wilder_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Wilder's smoothing: a simple mean of the first ``window`` values seeds the recursion
    ``avg_t = avg_{t-1} + (x_t - avg_{t-1}) / window``. Leading NaNs are skipped; a NaN later on
    yields NaN at that bar and leaves the running average untouched."""
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size < window:
        return out
    seed_end = finite[window - 1]
    average = float(np.mean(values[finite[:window]]))
    out[seed_end] = average
    for i in range(seed_end + 1, len(values)):
        x = values[i]
        if np.isfinite(x):
            average += (x - average) / window
            out[i] = average
    return out


def _ret(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    close = bars["close"]
    return {"": np.log(close / close.shift(window))}


def _ma_ratio(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    close = bars["close"]
    return {"": close / close.rolling(window, min_periods=window).mean() - 1.0}


def _ema(series: pd.Series, span: int) -> pd.Series:
    # adjust=False is the recursive EMA: each value depends only on the past.
    return series.ewm(span=span, adjust=False, min_periods=span).mean()


def _ema_ratio(bars: pd.DataFrame, *, span: int) -> FeatureColumns:
    close = bars["close"]
    return {"": close / _ema(close, span) - 1.0}


def _rsi(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    change = bars["close"].diff().to_numpy()
    gains = _wilder_mean(np.where(np.isnan(change), np.nan, np.clip(change, 0.0, None)), window)
    losses = _wilder_mean(np.where(np.isnan(change), np.nan, np.clip(-change, 0.0, None)), window)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + gains / losses)
    # No losses at all is maximal strength (100); no movement at all is neutral (50).
    rsi = np.where((losses == 0) & (gains > 0), 100.0, rsi)
    rsi = np.where((losses == 0) & (gains == 0), 50.0, rsi)
    return {"": pd.Series(rsi, index=bars.index)}


def _macd(bars: pd.DataFrame, *, fast: int, slow: int, signal: int) -> FeatureColumns:
    close = bars["close"]
    # Divided by price so that the feature means the same for a $4 and a $400 stock.
    line = (_ema(close, fast) - _ema(close, slow)) / close
    signal_line = _ema(line, signal)
    return {"_line": line, "_signal": signal_line, "_hist": line - signal_line}


def _bollinger(bars: pd.DataFrame, *, window: int, n_std: float) -> FeatureColumns:
    close = bars["close"]
    mean = close.rolling(window, min_periods=window).mean()
    band = n_std * close.rolling(window, min_periods=window).std(ddof=0)
    # 0 at the moving average, +-1 on the bands; a flat window sits on its average.
    position = ((close - mean) / band).where(band > 0, 0.0).where(band.notna())
    return {"": position}


def _atr(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    previous = bars["close"].shift(1)
    ranges = pd.concat(
        [
            bars["high"] - bars["low"],
            (bars["high"] - previous).abs(),
            (bars["low"] - previous).abs(),
        ],
        axis=1,
    )
    true_range = ranges.max(axis=1, skipna=True).to_numpy(dtype="float64")
    atr = _wilder_mean(true_range, window)
    return {"": pd.Series(atr, index=bars.index) / bars["close"]}


def _rvol(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    # Per-bar (not annualised) standard deviation of one-bar log returns.
    log_ret = np.log(bars["close"] / bars["close"].shift(1))
    return {"": log_ret.rolling(window, min_periods=window).std(ddof=1)}


def _volume_z(bars: pd.DataFrame, *, window: int) -> FeatureColumns:
    # Log volume: raw volume is heavy-tailed and a z-score of it is dominated by a few days.
    volume = np.log1p(bars["volume"].clip(lower=0.0))
    rolling = volume.rolling(window, min_periods=window)
    std = rolling.std(ddof=0)
    z = ((volume - rolling.mean()) / std).where(std > 0, 0.0).where(std.notna())
    return {"": z}


FEATURE_CATALOGUE: dict[str, FeatureFn] = {
    "ret": _ret,
    "ma_ratio": _ma_ratio,
    "ema_ratio": _ema_ratio,
    "rsi": _rsi,
    "macd": _macd,
    "bollinger": _bollinger,
    "atr": _atr,
    "rvol": _rvol,
    "volume_z": _volume_z,
}
assert set(FEATURE_CATALOGUE) == set(FEATURE_PARAMS), "feature catalogue and params disagree"

_MULTI_COLUMN = {"macd": ("_line", "_signal", "_hist")}


def default_feature_set() -> list[FeatureSpec]:
    """A broad, cheap starting set: returns, trend, oscillators, volatility and volume."""
    return [
        FeatureSpec(name="ret", params={"window": 1}),
        FeatureSpec(name="ret", params={"window": 5}),
        FeatureSpec(name="ret", params={"window": 20}),
        FeatureSpec(name="ma_ratio", params={"window": 10}),
        FeatureSpec(name="ma_ratio", params={"window": 50}),
        FeatureSpec(name="ema_ratio"),
        FeatureSpec(name="rsi"),
        FeatureSpec(name="macd"),
        FeatureSpec(name="bollinger"),
        FeatureSpec(name="atr"),
        FeatureSpec(name="rvol"),
        FeatureSpec(name="volume_z"),
    ]


def _unique(specs: Sequence[FeatureSpec]) -> list[FeatureSpec]:
    seen: dict[str, FeatureSpec] = {}
    for spec in specs:
        seen.setdefault(spec.stem(), spec)
    return list(seen.values())


def feature_columns(specs: Sequence[FeatureSpec]) -> list[str]:
    """Column names ``compute_features`` produces for ``specs``, in order, duplicates dropped."""
    names: list[str] = []
    for spec in _unique(specs):
        suffixes = _MULTI_COLUMN.get(spec.name, ("",))
        names += [spec.stem() + suffix for suffix in suffixes]
    return names


def warmup_bars(specs: Sequence[FeatureSpec]) -> int:
    """Upper bound on the leading bars per symbol that are NaN for ``specs``."""
    longest = 1
    for spec in specs:
        params = spec.resolved_params()
        window = int(params.get("slow", 0)) + int(params.get("signal", 0))
        longest = max(longest, window, *(int(v) for v in params.values()))
    return longest + 1


#: Weight the first bar may keep in a recursive average (EMA, Wilder) before it counts as settled.
SETTLE_WEIGHT = 1e-6


def _decay_bars(keep: float, weight: float) -> int:
    """Bars after which a recursion keeping ``keep`` of its value per bar holds ``weight``."""
    return math.ceil(math.log(weight) / math.log(keep))


def settle_bars(specs: Sequence[FeatureSpec], weight: float = SETTLE_WEIGHT) -> int:
    """Bars after a recursive feature's warm-up until its seed holds at most ``weight``.

    An EMA or Wilder average depends, ever more faintly, on the first bar it saw, so the same
    bar's value differs between a short history and a long one; after this many more bars the
    difference is at most ``weight`` times the spread of the seeds. MACD's signal line is an EMA
    of two EMAs, so its settling times add up. 0 for windowed features, which settle at once.
    """
    longest = 0
    for spec in specs:
        params = spec.resolved_params()
        if spec.name == "ema_ratio":
            longest = max(longest, _decay_bars(1.0 - 2.0 / (params["span"] + 1), weight))
        elif spec.name in ("rsi", "atr"):
            longest = max(longest, _decay_bars(1.0 - 1.0 / params["window"], weight))
        elif spec.name == "macd":
            slow = _decay_bars(1.0 - 2.0 / (params["slow"] + 1), weight)
            signal = _decay_bars(1.0 - 2.0 / (params["signal"] + 1), weight)
            longest = max(longest, slow + signal)
    return longest


def compute_features(
    frame: pd.DataFrame, specs: Sequence[FeatureSpec] | None = None
) -> pd.DataFrame:
    """Feature frame with ``timestamp``, ``symbol`` and one column per feature output.

    Rows are the input's rows sorted by symbol then timestamp (index reset), so the result lines
    up with ``data.sort_frame(frame)`` row for row. ``specs`` defaults to
    ``default_feature_set()``.
    """
    chosen = _unique(default_feature_set() if specs is None else specs)
    if not chosen:
        raise ValueError("at least one feature is required")
    bars = sort_frame(frame)
    parts: list[pd.DataFrame] = []
    for _, group in bars.groupby("symbol", sort=False):
        columns: dict[str, pd.Series] = {}
        for spec in chosen:
            outputs = FEATURE_CATALOGUE[spec.name](group, **spec.resolved_params())
            for suffix, values in outputs.items():
                columns[spec.stem() + suffix] = values.astype("float64")
        parts.append(pd.DataFrame(columns, index=group.index))
    features = pd.concat(parts).sort_index() if parts else pd.DataFrame(index=bars.index)
    return pd.concat([bars[["timestamp", "symbol"]], features], axis=1)
