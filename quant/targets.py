"""Prediction targets: forward log returns and direction labels, per symbol.

The last ``horizon`` bars of each symbol have no known future: their target is NaN. Training
drops them (``labelled``); prediction keeps them, since the newest bar is what gets scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant.data import sort_frame
from quant.specs import TargetSpec


def make_targets(frame: pd.DataFrame, spec: TargetSpec) -> pd.DataFrame:
    """Targets aligned with ``data.sort_frame(frame)`` row for row.

    Columns:
        timestamp, symbol: keys.
        fwd_return: ``log(close[t + horizon] / close[t])``, NaN for the last ``horizon`` bars.
        next_return: simple return of the next bar, ``close[t + 1] / close[t] - 1``: what a
            position decided at bar t's close earns, used for trading metrics.
        target: ``fwd_return`` for regression; 1.0 if it is positive else 0.0 for direction;
            NaN where unknown.
    """
    bars = sort_frame(frame)
    close = bars.groupby("symbol", sort=False)["close"]
    # A negative shift is look-ahead by construction: acceptable only because these are labels.
    future = close.shift(-spec.horizon)
    fwd_return = np.log(future / bars["close"])
    next_return = close.shift(-1) / bars["close"] - 1.0
    if spec.kind == "direction":
        target = (fwd_return > 0).astype("float64").where(fwd_return.notna())
    else:
        target = fwd_return
    return pd.DataFrame(
        {
            "timestamp": bars["timestamp"],
            "symbol": bars["symbol"],
            "fwd_return": fwd_return.astype("float64"),
            "next_return": next_return.astype("float64"),
            "target": target.astype("float64"),
        }
    )


def labelled(targets: pd.DataFrame) -> np.ndarray:
    """Rows whose target (and so forward and next return) is known: the training rows."""
    known: np.ndarray = np.isfinite(targets["target"].to_numpy(dtype="float64")) & np.isfinite(
        targets["next_return"].to_numpy(dtype="float64")
    )
    return known
