"""Walk-forward train/test splits over time-ordered unique timestamps.

Splits are made on *timestamps*, not rows, so a multi-symbol frame is cut at the same instants
for every symbol. The layout, for ``n`` timestamps, ``k`` folds of ``test_size`` and an embargo
``g``::

    fold i test  = [n - (k - i) * test_size, n - (k - i - 1) * test_size)
    fold i train = [0 or train_end - window, test_start - g)

so test windows tile the end of the data without overlapping, and ``g`` timestamps between train
end and test start are never used. ``g = max(spec.embargo, horizon)``: a training label at
position p looks ``horizon`` bars ahead, to ``p + horizon``; with ``g >= horizon`` the last
training label ends before the first test bar, so no training label overlaps a test label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant.specs import WalkForwardSpec


@dataclass(frozen=True)
class Split:
    """One fold: integer positions into the sorted unique timestamps.

    Parameters:
        train: positions used for fitting, contiguous and increasing.
        test: positions scored out of sample, contiguous, after ``train`` plus the embargo.
    """

    train: np.ndarray
    test: np.ndarray


def _train_window(spec: WalkForwardSpec) -> int:
    # A rolling window trains on exactly train_size timestamps (min_train_size if unset);
    # an expanding one starts at min_train_size and grows.
    if spec.mode == "rolling":
        return spec.train_size if spec.train_size is not None else spec.min_train_size
    return spec.min_train_size


def walk_forward_splits(n: int, spec: WalkForwardSpec, *, horizon: int = 1) -> list[Split]:
    """Folds over ``n`` time-ordered unique timestamps; see the module docstring for the layout.

    Raises ``ValueError`` if the data is too short for ``n_splits`` test windows after the
    minimum training window and the embargo.
    """
    embargo = max(spec.embargo, horizon)
    window = _train_window(spec)
    test_size = spec.test_size
    if test_size is None:
        test_size = (n - window - embargo) // spec.n_splits
    first_train_end = n - spec.n_splits * test_size - embargo
    if test_size < 1 or first_train_end < window:
        needed = window + embargo + spec.n_splits * max(test_size, 1)
        raise ValueError(
            f"not enough data for walk-forward: {n} timestamps, need at least {needed} "
            f"({window} train + {embargo} embargo + {spec.n_splits} x {max(test_size, 1)} test)"
        )
    splits: list[Split] = []
    for i in range(spec.n_splits):
        test_start = n - (spec.n_splits - i) * test_size
        train_end = test_start - embargo
        train_start = 0 if spec.mode == "expanding" else train_end - window
        splits.append(
            Split(
                train=np.arange(train_start, train_end),
                test=np.arange(test_start, test_start + test_size),
            )
        )
    return splits


def timestamp_codes(timestamps: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique timestamps and, for each row, the position of its timestamp among them."""
    values = timestamps.to_numpy(dtype="datetime64[ns]")
    unique = np.unique(values)
    return unique, np.searchsorted(unique, values)


def rows_in(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Row numbers whose timestamp position is in ``positions`` (a contiguous range)."""
    if positions.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero((codes >= positions[0]) & (codes <= positions[-1]))
