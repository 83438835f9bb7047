"""Features against hand-computed values, and the no-look-ahead guarantee for the catalogue."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant.features import (
    FEATURE_CATALOGUE,
    compute_features,
    default_feature_set,
    feature_columns,
    warmup_bars,
)
from quant.specs import FEATURE_PARAMS, FeatureSpec

CLOSES = [10.0, 11.0, 10.5, 11.5, 11.0, 12.0]
VOLUMES = [100.0, 200.0, 150.0, 300.0, 250.0, 400.0]


def small_frame(symbol: str = "AAA") -> pd.DataFrame:
    close = np.array(CLOSES)
    return pd.DataFrame(
        {
            "timestamp": pd.bdate_range("2024-01-01", periods=len(close)),
            "symbol": symbol,
            "open": close,
            "high": close + 0.5,
            "low": close - 0.5,
            "close": close,
            "volume": VOLUMES,
        }
    )


def random_walk(n: int, symbols: tuple[str, ...] = ("AAA", "BBB"), seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        spread = np.abs(rng.normal(0, 0.01, n)) * close
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.bdate_range("2020-01-01", periods=n),
                    "symbol": symbol,
                    "open": close * (1 + rng.normal(0, 0.003, n)),
                    "high": close + spread + 0.5,
                    "low": close - spread - 0.5,
                    "close": close,
                    "volume": rng.integers(1_000, 10_000, n).astype(float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def one(name: str, **params: float) -> pd.Series:
    spec = FeatureSpec(name=name, params=params)
    return compute_features(small_frame(), [spec])[spec.stem()]


def test_returns_by_hand() -> None:
    r1 = one("ret", window=1)
    r2 = one("ret", window=2)
    assert math.isnan(r1[0])
    assert r1[1] == pytest.approx(math.log(11 / 10))
    assert r1[5] == pytest.approx(math.log(12 / 11))
    assert r2.isna().sum() == 2
    assert r2[2] == pytest.approx(math.log(10.5 / 10))


def test_ma_ratio_by_hand() -> None:
    ratio = one("ma_ratio", window=3)
    assert ratio[:2].isna().all()
    assert ratio[2] == pytest.approx(10.5 / ((10 + 11 + 10.5) / 3) - 1)
    assert ratio[3] == pytest.approx(11.5 / ((11 + 10.5 + 11.5) / 3) - 1)


def test_ema_ratio_by_hand() -> None:
    # span 2 -> alpha 2/3, recursive from the first close.
    alpha = 2 / 3
    e1 = 10 + alpha * (11 - 10)
    e2 = e1 + alpha * (10.5 - e1)
    ratio = one("ema_ratio", span=2)
    assert math.isnan(ratio[0])
    assert ratio[1] == pytest.approx(11 / e1 - 1)
    assert ratio[2] == pytest.approx(10.5 / e2 - 1)


def test_rsi_wilder_by_hand() -> None:
    # Changes: +1, -0.5, +1, -0.5, +1. Seed over the first 3 changes, then Wilder smoothing.
    gain, loss = (1 + 0 + 1) / 3, (0 + 0.5 + 0) / 3
    expected = [100 - 100 / (1 + gain / loss)]
    for g, lo in [(0.0, 0.5), (1.0, 0.0)]:
        gain, loss = gain + (g - gain) / 3, loss + (lo - loss) / 3
        expected.append(100 - 100 / (1 + gain / loss))
    rsi = one("rsi", window=3)
    assert rsi[:3].isna().all()
    assert rsi[3] == pytest.approx(80.0)
    assert list(rsi[3:]) == pytest.approx(expected)


def test_rsi_extremes() -> None:
    frame = small_frame()
    frame["close"] = [10.0, 11, 12, 13, 14, 15]
    rising = compute_features(frame, [FeatureSpec(name="rsi", params={"window": 3})])["rsi_3"]
    frame["close"] = 10.0
    flat = compute_features(frame, [FeatureSpec(name="rsi", params={"window": 3})])["rsi_3"]
    assert rising[3:].tolist() == [100.0, 100.0, 100.0]
    assert flat[3:].tolist() == [50.0, 50.0, 50.0]


def test_atr_by_hand() -> None:
    # high/low are close +- 0.5, so true ranges are 1, 1.5, 1, 1.5, 1, 1.5.
    seed = (1 + 1.5 + 1) / 3
    nxt = seed + (1.5 - seed) / 3
    atr = one("atr", window=3)
    assert atr[:2].isna().all()
    assert atr[2] == pytest.approx(seed / 10.5)
    assert atr[3] == pytest.approx(nxt / 11.5)


def test_bollinger_by_hand() -> None:
    position = one("bollinger", window=3, n_std=2.0)
    std = math.sqrt(1 / 6)  # population std of (11, 10.5, 11.5) and of (10, 11, 10.5)
    assert position[2] == pytest.approx(0.0)
    assert position[3] == pytest.approx(0.5 / (2 * std))


def test_rvol_and_volume_z_by_hand() -> None:
    rets = [math.log(11 / 10), math.log(10.5 / 11), math.log(11.5 / 10.5)]
    assert one("rvol", window=3)[3] == pytest.approx(float(np.std(rets, ddof=1)))
    logs = np.log1p(VOLUMES[:3])
    expected = (logs[2] - logs.mean()) / logs.std()
    assert one("volume_z", window=3)[2] == pytest.approx(float(expected))


def _ema(values: list[float], span: int) -> list[float]:
    alpha, out, average, seen = 2 / (span + 1), [], None, 0
    for v in values:
        if math.isnan(v):
            out.append(math.nan)
            continue
        average = v if average is None else average + alpha * (v - average)
        seen += 1
        out.append(average if seen >= span else math.nan)
    return out


def test_macd_matches_recursive_emas() -> None:
    spec = FeatureSpec(name="macd", params={"fast": 2, "slow": 3, "signal": 2})
    out = compute_features(small_frame(), [spec])
    line = [(f - s) / c for f, s, c in zip(_ema(CLOSES, 2), _ema(CLOSES, 3), CLOSES, strict=True)]
    signal = _ema(line, 2)
    np.testing.assert_allclose(out["macd_2_3_2_line"], line, equal_nan=True)
    np.testing.assert_allclose(out["macd_2_3_2_signal"], signal, equal_nan=True)
    np.testing.assert_allclose(out["macd_2_3_2_hist"], np.subtract(line, signal), equal_nan=True)
    assert out["macd_2_3_2_signal"].notna().sum() == 3


def test_column_names_and_order() -> None:
    specs = [
        FeatureSpec(name="rsi"),
        FeatureSpec(name="macd"),
        FeatureSpec(name="bollinger", params={"n_std": 2.5}),
        FeatureSpec(name="rsi", params={"window": 14}),  # duplicate of the first
    ]
    names = feature_columns(specs)
    assert names == [
        "rsi_14",
        "macd_12_26_9_line",
        "macd_12_26_9_signal",
        "macd_12_26_9_hist",
        "bollinger_20_2.5",
    ]
    out = compute_features(random_walk(60), specs)
    assert list(out.columns) == ["timestamp", "symbol", *names]


def test_catalogue_matches_params_and_default_set_covers_it() -> None:
    assert set(FEATURE_CATALOGUE) == set(FEATURE_PARAMS)
    assert {s.name for s in default_feature_set()} == set(FEATURE_CATALOGUE)


def test_output_is_sorted_and_aligned_whatever_the_input_order() -> None:
    frame = random_walk(40)
    shuffled = frame.sample(frac=1.0, random_state=1)
    a = compute_features(frame, default_feature_set())
    b = compute_features(shuffled, default_feature_set())
    pd.testing.assert_frame_equal(a, b)
    assert a["symbol"].tolist() == ["AAA"] * 40 + ["BBB"] * 40
    assert a["timestamp"].is_monotonic_increasing is False  # two symbols, each ascending
    assert a[a["symbol"] == "AAA"]["timestamp"].is_monotonic_increasing


def test_warmup_bound_covers_the_nan_prefix() -> None:
    specs = default_feature_set()
    out = compute_features(random_walk(120, ("AAA",)), specs)
    first_complete = int(np.flatnonzero(out[feature_columns(specs)].notna().all(axis=1))[0])
    assert first_complete <= warmup_bars(specs)
    assert out.iloc[first_complete:][feature_columns(specs)].notna().all().all()


def _all_specs() -> list[FeatureSpec]:
    specs = [FeatureSpec(name=name) for name in FEATURE_CATALOGUE]
    specs += [
        FeatureSpec(name="ret", params={"window": 3}),
        FeatureSpec(name="rsi", params={"window": 5}),
    ]
    return specs


@pytest.mark.parametrize("spec", _all_specs(), ids=lambda s: s.stem())
def test_no_look_ahead(spec: FeatureSpec) -> None:
    """Mutating bars after t (prices, volume, and the other symbol entirely) never changes the
    feature at or before t."""
    frame = random_walk(150)
    base = compute_features(frame, [spec])
    columns = feature_columns([spec])
    rng = np.random.default_rng(3)
    for cut in (60, 100, 140):
        cut_time = frame["timestamp"].iloc[cut]
        mutated = frame.copy()
        future = mutated["timestamp"] > cut_time
        for column in ("open", "high", "low", "close", "volume"):
            mutated.loc[future, column] *= rng.uniform(0.5, 1.5, int(future.sum()))
        changed = compute_features(mutated, [spec])
        past = base["timestamp"] <= cut_time
        pd.testing.assert_frame_equal(base.loc[past, columns], changed.loc[past, columns])
        # the future did change, so the check above is not vacuous
        assert not np.allclose(
            base.loc[~past, columns].fillna(0), changed.loc[~past, columns].fillna(0)
        )


@pytest.mark.parametrize("spec", _all_specs(), ids=lambda s: s.stem())
def test_no_cross_symbol_leakage(spec: FeatureSpec) -> None:
    frame = random_walk(80)
    other = frame["symbol"] == "BBB"
    mutated = frame.copy()
    mutated.loc[other, ["open", "high", "low", "close"]] *= 3.0
    mutated.loc[other, "volume"] = mutated.loc[other, "volume"][::-1].to_numpy()
    columns = feature_columns([spec])
    a = compute_features(frame, [spec])
    b = compute_features(mutated, [spec])
    mine = a["symbol"] == "AAA"
    pd.testing.assert_frame_equal(a.loc[mine, columns], b.loc[mine, columns])


def test_empty_spec_list_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one feature"):
        compute_features(small_frame(), [])
