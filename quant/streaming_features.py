"""Technical features computed one bar at a time, equal to ``compute_features`` on the same bars.

``quant.features`` computes a whole frame at once; a live strategy sees one bar per
symbol at a time and cannot afford to recompute years of history per bar. Each feature here
keeps the smallest state that reproduces the batch value exactly: a window of the last bars for
rolling statistics, the running value for recursive ones (EMA, Wilder averages). The recursions
are written the way pandas and ``features._wilder_mean`` write them, operation for operation, so
the two paths agree to rounding (the parity test asserts 1e-9 over the whole shipped history).

Bars are assumed finite and in time order: the market-data layer drops late and duplicate bars
before they reach a ``StreamingFeatures``. Until a feature's history is long enough its value is
NaN, exactly as in the batch frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from quant.features import default_feature_set, feature_columns
from quant.specs import FeatureSpec

NAN = math.nan


class BarValues(NamedTuple):
    """One bar's prices and volume."""

    open: float
    high: float
    low: float
    close: float
    volume: float


class _Feature(Protocol):
    def update(self, bar: BarValues) -> tuple[float, ...]: ...


class _Ema:
    """pandas' ``ewm(span=..., adjust=False, min_periods=span).mean()``, one value at a time."""

    def __init__(self, span: int) -> None:
        alpha = 1.0 / (1.0 + (span - 1) / 2.0)  # pandas derives alpha from com like this
        self.old_factor, self.new_weight = 1.0 - alpha, alpha
        self.span, self.count, self.value = span, 0, NAN

    def update(self, x: float) -> float:
        if math.isnan(x):  # a leading NaN (an input not yet defined) is not an observation
            return self.value if self.count >= self.span else NAN
        self.count += 1
        if self.count == 1:
            self.value = x
        elif self.value != x:
            weighted = self.old_factor * self.value + self.new_weight * x
            self.value = weighted / (self.old_factor + self.new_weight)
        return self.value if self.count >= self.span else NAN


class _Wilder:
    """``features._wilder_mean``: a simple mean of the first ``window`` values seeds
    ``avg += (x - avg) / window``."""

    def __init__(self, window: int) -> None:
        self.window, self.value = window, NAN
        self.seed: list[float] = []

    def update(self, x: float) -> float:
        if math.isnan(x):
            return NAN
        if len(self.seed) < self.window:
            self.seed.append(x)
            if len(self.seed) == self.window:
                self.value = float(np.mean(np.asarray(self.seed)))
                return self.value
            return NAN
        self.value += (x - self.value) / self.window
        return self.value


class _Window:
    """The last ``size`` values; ``full`` once that many were seen."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)

    def push(self, x: float) -> np.ndarray | None:
        self.values.append(x)
        if len(self.values) < (self.values.maxlen or 0) or any(map(math.isnan, self.values)):
            return None
        return np.fromiter(self.values, dtype="float64", count=len(self.values))


class _Ret:
    def __init__(self, window: int) -> None:
        self.closes = _Window(window + 1)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        past = self.closes.push(bar.close)
        return (NAN,) if past is None else (float(np.log(bar.close / past[0])),)


class _MaRatio:
    def __init__(self, window: int) -> None:
        self.closes = _Window(window)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        values = self.closes.push(bar.close)
        return (NAN,) if values is None else (bar.close / float(np.mean(values)) - 1.0,)


class _EmaRatio:
    def __init__(self, span: int) -> None:
        self.ema = _Ema(span)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        return (bar.close / self.ema.update(bar.close) - 1.0,)


class _Rsi:
    def __init__(self, window: int) -> None:
        self.gains, self.losses = _Wilder(window), _Wilder(window)
        self.previous = NAN

    def update(self, bar: BarValues) -> tuple[float, ...]:
        change, self.previous = bar.close - self.previous, bar.close
        gain = self.gains.update(max(change, 0.0) if not math.isnan(change) else NAN)
        loss = self.losses.update(max(-change, 0.0) if not math.isnan(change) else NAN)
        if math.isnan(gain) or math.isnan(loss):
            return (NAN,)
        if loss == 0:  # the batch rule: no losses is 100, no movement at all is 50
            return (100.0 if gain > 0 else 50.0,)
        return (100.0 - 100.0 / (1.0 + gain / loss),)


class _Macd:
    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self.fast, self.slow, self.signal = _Ema(fast), _Ema(slow), _Ema(signal)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        line = (self.fast.update(bar.close) - self.slow.update(bar.close)) / bar.close
        signal = self.signal.update(line)
        return (line, signal, line - signal)


class _Bollinger:
    def __init__(self, window: int, n_std: float) -> None:
        self.closes, self.n_std = _Window(window), n_std

    def update(self, bar: BarValues) -> tuple[float, ...]:
        values = self.closes.push(bar.close)
        if values is None:
            return (NAN,)
        band = self.n_std * float(np.std(values))
        return ((bar.close - float(np.mean(values))) / band if band > 0 else 0.0,)


class _Atr:
    def __init__(self, window: int) -> None:
        self.wilder, self.previous = _Wilder(window), NAN

    def update(self, bar: BarValues) -> tuple[float, ...]:
        ranges = [bar.high - bar.low]
        if not math.isnan(self.previous):
            ranges += [abs(bar.high - self.previous), abs(bar.low - self.previous)]
        self.previous = bar.close
        return (self.wilder.update(max(ranges)) / bar.close,)


class _Rvol:
    def __init__(self, window: int) -> None:
        self.returns, self.previous = _Window(window), NAN

    def update(self, bar: BarValues) -> tuple[float, ...]:
        values = self.returns.push(float(np.log(bar.close / self.previous)))
        self.previous = bar.close
        return (NAN,) if values is None else (float(np.std(values, ddof=1)),)


class _VolumeZ:
    def __init__(self, window: int) -> None:
        self.volumes = _Window(window)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        volume = float(np.log1p(max(bar.volume, 0.0)))
        values = self.volumes.push(volume)
        if values is None:
            return (NAN,)
        std = float(np.std(values))
        return ((volume - float(np.mean(values))) / std if std > 0 else 0.0,)


_STREAMING: dict[str, type] = {
    "ret": _Ret, "ma_ratio": _MaRatio, "ema_ratio": _EmaRatio, "rsi": _Rsi, "macd": _Macd,
    "bollinger": _Bollinger, "atr": _Atr, "rvol": _Rvol, "volume_z": _VolumeZ,
}


class StreamingFeatures:
    """One symbol's features, updated bar by bar.

    Args:
        specs: the feature set (default ``default_feature_set()``); ``columns`` names the
            values ``update`` returns, in ``features.feature_columns`` order.
    """

    def __init__(self, specs: Sequence[FeatureSpec] | None = None) -> None:
        chosen = list(default_feature_set() if specs is None else specs)
        if not chosen:
            raise ValueError("at least one feature is required")
        self.columns = feature_columns(chosen)
        self._features: list[_Feature] = [
            _STREAMING[spec.name](**spec.resolved_params()) for spec in _first_of_each(chosen)]
        self.bars = 0

    def update(self, bar: BarValues) -> np.ndarray:
        """The feature vector at this bar (NaN where history is still too short)."""
        self.bars += 1
        values: list[float] = []
        for feature in self._features:
            values.extend(feature.update(bar))
        return np.asarray(values, dtype="float64")


def _first_of_each(specs: Sequence[FeatureSpec]) -> list[FeatureSpec]:
    """Duplicates (same stem) dropped, first occurrence kept: ``feature_columns``' order."""
    seen: dict[str, FeatureSpec] = {}
    for spec in specs:
        seen.setdefault(spec.stem(), spec)
    return list(seen.values())
