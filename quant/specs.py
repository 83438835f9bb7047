"""Input specifications for quant tasks: frozen, keyword-only msgspec Structs with defaults.

Names are checked against fixed catalogues at construction *and* at decode time (msgspec runs
``__post_init__`` on decode and turns its ``ValueError`` into a ``msgspec.ValidationError``, itself
a ``ValueError``), so a spec that exists is a spec that is valid. Hyperparameter *names* for
estimators are checked later, by ``estimators.build_estimator``, because that needs scikit-learn.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

Scalar = str | int | float | bool | None
TargetKind = Literal["regression", "direction"]


class ParamRule(NamedTuple):
    """One feature parameter: its default, smallest allowed value and whether it is an integer."""

    default: int | float
    minimum: int | float
    integer: bool = True


# The feature catalogue's parameters, in the order used to build column names (``macd_12_26_9``).
# Rolling statistics need at least two points, hence minimum 2 where a std or an RSI is involved.
FEATURE_PARAMS: dict[str, dict[str, ParamRule]] = {
    "ret": {"window": ParamRule(1, 1)},
    "ma_ratio": {"window": ParamRule(20, 2)},
    "ema_ratio": {"span": ParamRule(20, 2)},
    "rsi": {"window": ParamRule(14, 2)},
    "macd": {"fast": ParamRule(12, 2), "slow": ParamRule(26, 3), "signal": ParamRule(9, 2)},
    "bollinger": {"window": ParamRule(20, 2), "n_std": ParamRule(2.0, 0.1, integer=False)},
    "atr": {"window": ParamRule(14, 2)},
    "rvol": {"window": ParamRule(20, 2)},
    "volume_z": {"window": ParamRule(20, 2)},
}

# Largest look-back any single feature parameter may ask for: longer windows only burn data.
MAX_WINDOW = 1000

ESTIMATOR_NAMES: frozenset[str] = frozenset(
    {
        "ridge",
        "lasso",
        "elastic_net",
        "linear_regression",
        "logistic_regression",
        "random_forest",
        "extra_trees",
        "gradient_boosting",
        "hist_gradient_boosting",
        "knn",
    }
)


class Spec(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every quant spec: immutable and keyword-only, like the wire contracts."""


def _check_param(feature: str, key: str, value: object, rule: ParamRule) -> None:
    # bool is an int subclass; ``window=True`` is a mistake, not a window of one.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"feature {feature!r}: parameter {key!r} must be a number, got {value!r}")
    if rule.integer and not float(value).is_integer():
        raise ValueError(f"feature {feature!r}: parameter {key!r} must be an integer, got {value}")
    if not rule.minimum <= value <= MAX_WINDOW:
        raise ValueError(
            f"feature {feature!r}: parameter {key!r}={value} is outside "
            f"[{rule.minimum}, {MAX_WINDOW}]"
        )


class FeatureSpec(Spec, frozen=True, kw_only=True):
    """One feature from the catalogue in ``FEATURE_PARAMS``.

    Parameters:
        name: catalogue name, e.g. ``"rsi"``.
        params: overrides of the catalogue defaults, e.g. ``{"window": 10}``; unknown keys fail.
    """

    name: str
    params: dict[str, int | float] = {}

    def __post_init__(self) -> None:
        rules = FEATURE_PARAMS.get(self.name)
        if rules is None:
            known = ", ".join(sorted(FEATURE_PARAMS))
            raise ValueError(f"unknown feature {self.name!r}; known features: {known}")
        unknown = sorted(set(self.params) - set(rules))
        if unknown:
            raise ValueError(
                f"feature {self.name!r}: unknown parameters {unknown}; allowed: {sorted(rules)}"
            )
        for key, value in self.params.items():
            _check_param(self.name, key, value, rules[key])
        resolved = self.resolved_params()
        if self.name == "macd" and resolved["fast"] >= resolved["slow"]:
            raise ValueError("feature 'macd': fast must be smaller than slow")

    def resolved_params(self) -> dict[str, int | float]:
        """Defaults overlaid with ``params``, integers as ``int``, in catalogue order."""
        out: dict[str, int | float] = {}
        for key, rule in FEATURE_PARAMS[self.name].items():
            value = self.params.get(key, rule.default)
            out[key] = int(value) if rule.integer else float(value)
        return out

    def stem(self) -> str:
        """Column name (or prefix, for multi-column features): ``rsi_14``, ``bollinger_20_2``."""
        parts = [
            f"{v:g}" if isinstance(v, float) else str(v) for v in self.resolved_params().values()
        ]
        return "_".join([self.name, *parts])


class TargetSpec(Spec, frozen=True, kw_only=True):
    """What the model predicts.

    Parameters:
        kind: ``"regression"`` predicts the next-``horizon``-bar log return; ``"direction"``
            predicts whether it is positive (label 1) or not (label 0).
        horizon: number of bars ahead, at least 1.
    """

    kind: TargetKind = "regression"
    horizon: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "direction"):
            raise ValueError(f"target kind must be 'regression' or 'direction', got {self.kind!r}")
        if not 1 <= self.horizon <= MAX_WINDOW:
            raise ValueError(f"target horizon must be in [1, {MAX_WINDOW}], got {self.horizon}")


class EstimatorSpec(Spec, frozen=True, kw_only=True):
    """One scikit-learn estimator from the allow-list ``ESTIMATOR_NAMES``.

    Parameters:
        name: allow-listed estimator name, e.g. ``"ridge"``.
        hyperparameters: constructor arguments; names are checked against the estimator's
            ``get_params()`` when it is built, values by scikit-learn when it is fitted.
    """

    name: str
    hyperparameters: dict[str, Scalar] = {}

    def __post_init__(self) -> None:
        if self.name not in ESTIMATOR_NAMES:
            known = ", ".join(sorted(ESTIMATOR_NAMES))
            raise ValueError(f"unknown estimator {self.name!r}; allowed: {known}")


class WalkForwardSpec(Spec, frozen=True, kw_only=True):
    """How time is cut into train/test folds (see ``walkforward.walk_forward_splits``).

    Parameters:
        mode: ``"expanding"`` trains on everything before the test window; ``"rolling"`` on the
            last ``train_size`` timestamps only.
        n_splits: number of test windows.
        train_size: rolling window length in timestamps; ``None`` means ``min_train_size``.
        min_train_size: fewest timestamps the first fold may train on.
        test_size: timestamps per test window; ``None`` shares the data after the first
            training window equally between the folds.
        embargo: timestamps dropped between train end and test start; the effective embargo
            is never below the target horizon.
    """

    mode: Literal["expanding", "rolling"] = "expanding"
    n_splits: int = 5
    train_size: int | None = None
    min_train_size: int = 252
    test_size: int | None = None
    embargo: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("expanding", "rolling"):
            raise ValueError(
                f"walk-forward mode must be 'expanding' or 'rolling', got {self.mode!r}"
            )
        if self.n_splits < 1:
            raise ValueError(f"n_splits must be at least 1, got {self.n_splits}")
        if self.min_train_size < 2:
            raise ValueError(f"min_train_size must be at least 2, got {self.min_train_size}")
        if self.train_size is not None and self.train_size < 2:
            raise ValueError(f"train_size must be at least 2, got {self.train_size}")
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"test_size must be at least 1, got {self.test_size}")
        if self.embargo < 0:
            raise ValueError(f"embargo must not be negative, got {self.embargo}")


class CostSpec(Spec, frozen=True, kw_only=True):
    """Trading costs, charged on every unit of position change.

    Parameters:
        bps: cost in basis points of traded notional (1 bps = 0.0001).
    """

    bps: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.bps <= 10_000.0:
            raise ValueError(f"cost bps must be in [0, 10000], got {self.bps}")


class TradingSpec(Spec, frozen=True, kw_only=True):
    """How predictions become positions (see ``metrics.positions_from_signal``).

    Parameters:
        mode: ``"long_short"`` goes +1/-1 on the sign of the signal; ``"long_flat"`` goes long
            or stays flat.
        threshold: the signal must exceed this (in absolute value) to take a position. The signal
            is the predicted return for regression and ``P(up) - 0.5`` for direction targets.
        fill: when a position decided at bar t's close (features include t's close and volume)
            is executed: ``"close"``, at that close, earning close-to-close returns; or
            ``"next_open"``, at bar t+1's open, earning open-to-open returns. The backtest and
            the live paper broker follow the same convention.
    """

    mode: Literal["long_short", "long_flat"] = "long_short"
    threshold: float = 0.0
    fill: Literal["close", "next_open"] = "close"

    def __post_init__(self) -> None:
        if self.mode not in ("long_short", "long_flat"):
            raise ValueError(f"trading mode must be 'long_short' or 'long_flat', got {self.mode!r}")
        if self.fill not in ("close", "next_open"):
            raise ValueError(f"fill must be 'close' or 'next_open', got {self.fill!r}")
        if self.threshold < 0.0:
            raise ValueError(f"trading threshold must not be negative, got {self.threshold}")
