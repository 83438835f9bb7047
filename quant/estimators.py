"""The allow-listed scikit-learn estimators, ensembles of them, and safe (skops) persistence.

Only the names in ``specs.ESTIMATOR_NAMES`` can be built; hyperparameter names are checked
against the estimator's ``get_params()`` and values are checked by scikit-learn at fit time.
Models are persisted with skops, never pickle: loading refuses any type outside
``SKOPS_TRUSTED_TYPES`` (plus the types skops trusts by default: scikit-learn estimators, numpy
and scipy containers), and ``dump_model`` refuses to write bytes that ``load_model`` would refuse.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any, Final, Literal, TypeAlias

import numpy as np
import skops.io as sio
from sklearn.base import BaseEstimator, is_classifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.inspection import permutation_importance
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from quant.specs import EstimatorSpec, TargetKind

EnsembleMethod = Literal["mean", "stacked"]
Model: TypeAlias = (
    Pipeline | VotingRegressor | VotingClassifier | StackingRegressor | StackingClassifier
)

_REGRESSORS: dict[str, type[BaseEstimator]] = {
    "ridge": Ridge,
    "lasso": Lasso,
    "elastic_net": ElasticNet,
    "linear_regression": LinearRegression,
    "random_forest": RandomForestRegressor,
    "extra_trees": ExtraTreesRegressor,
    "gradient_boosting": GradientBoostingRegressor,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
    "knn": KNeighborsRegressor,
}
_CLASSIFIERS: dict[str, type[BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "extra_trees": ExtraTreesClassifier,
    "gradient_boosting": GradientBoostingClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "knn": KNeighborsClassifier,
}
# Distance- and penalty-based models need comparable feature scales; trees do not.
_SCALED = frozenset(
    {"ridge", "lasso", "elastic_net", "linear_regression", "logistic_regression", "knn"}
)

# Defaults that differ from scikit-learn's, chosen for noisy daily-return data: sklearn's
# alpha=1 zeroes every lasso coefficient on returns of ~1e-2; fully grown forests memorise noise
# and are slow.
ESTIMATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "lasso": {"alpha": 1e-4},
    "elastic_net": {"alpha": 1e-4},
    "logistic_regression": {"max_iter": 1000},
    "random_forest": {"n_estimators": 100, "max_depth": 6, "min_samples_leaf": 20},
    "extra_trees": {"n_estimators": 100, "max_depth": 6, "min_samples_leaf": 20},
    "gradient_boosting": {"n_estimators": 100, "max_depth": 3, "subsample": 0.8},
    "knn": {"n_neighbors": 50},
}
# Hyperparameters a request may not set, and why.
RESERVED_HYPERPARAMETERS: dict[str, str] = {
    "n_jobs": "parallelism is decided by the executor, not per model",
    "verbose": "models must not write to stdout",
}
# Distance metrics whose fitted trees skops can load with SKOPS_TRUSTED_TYPES.
_KNN_METRICS = frozenset({"minkowski", "euclidean", "manhattan", "chebyshev"})

# Checked with skops.io.get_untrusted_types on a dump of every allowed estimator and ensemble
# (tests/unit/quant/test_estimators.py keeps this list honest).
SKOPS_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils._bunch.Bunch",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    }
)
_MODEL_TYPES = (Pipeline, VotingRegressor, VotingClassifier, StackingRegressor, StackingClassifier)


def estimator_names(kind: TargetKind) -> list[str]:
    """Allowed estimator names for a target kind."""
    return sorted(_CLASSIFIERS if kind == "direction" else _REGRESSORS)


def hyperparameter_names(name: str, kind: TargetKind) -> list[str]:
    """Hyperparameters a request may set for estimator ``name`` and target ``kind``."""
    table = _CLASSIFIERS if kind == "direction" else _REGRESSORS
    cls = table.get(name)
    if cls is None:
        raise ValueError(
            f"estimator {name!r} cannot predict a {kind!r} target; "
            f"choose one of {estimator_names(kind)}"
        )
    return sorted(set(cls().get_params(deep=False)) - set(RESERVED_HYPERPARAMETERS))


def _check_hyperparameters(spec: EstimatorSpec, estimator: BaseEstimator) -> None:
    valid = set(estimator.get_params(deep=False))
    unknown = sorted(set(spec.hyperparameters) - valid)
    if unknown:
        raise ValueError(
            f"estimator {spec.name!r}: unknown hyperparameters {unknown}; "
            f"valid: {sorted(valid - set(RESERVED_HYPERPARAMETERS))}"
        )
    for name, reason in RESERVED_HYPERPARAMETERS.items():
        if name in spec.hyperparameters:
            raise ValueError(f"estimator {spec.name!r}: {name!r} cannot be set: {reason}")
    metric = spec.hyperparameters.get("metric")
    if spec.name == "knn" and metric is not None and metric not in _KNN_METRICS:
        raise ValueError(f"estimator 'knn': metric must be one of {sorted(_KNN_METRICS)}")


def build_estimator(spec: EstimatorSpec, kind: TargetKind) -> Pipeline:
    """An unfitted ``Pipeline`` (``scale`` where sensible, then ``model``) for ``spec``.

    Regressors serve ``"regression"`` targets and classifiers ``"direction"`` targets; names
    that exist for only one kind (``ridge``, ``logistic_regression``...) fail for the other.
    Estimators with a ``random_state`` get 0 unless given, so that training is deterministic.
    """
    hyperparameter_names(spec.name, kind)  # raises if the name does not fit the kind
    table = _CLASSIFIERS if kind == "direction" else _REGRESSORS
    estimator = table[spec.name]()
    _check_hyperparameters(spec, estimator)
    params: dict[str, Any] = dict(ESTIMATOR_DEFAULTS.get(spec.name, {}))
    if "random_state" in estimator.get_params(deep=False):
        params["random_state"] = 0
    params.update(spec.hyperparameters)
    estimator.set_params(**params)
    steps: list[tuple[str, Any]] = [("model", estimator)]
    if spec.name in _SCALED:
        steps.insert(0, ("scale", StandardScaler()))
    return Pipeline(steps)


def build_ensemble(
    specs: Sequence[EstimatorSpec], kind: TargetKind, method: EnsembleMethod = "mean"
) -> Model:
    """Average (``"mean"``: soft voting for classifiers) or stack (``"stacked"``) estimators.

    Stacking fits a ridge (regression) or logistic regression (direction) on 3-fold
    out-of-fold member predictions. Those inner folds are contiguous but not time-ordered: the
    meta-model sees member predictions made with later training data, which can only affect the
    blend inside one training window, never the walk-forward test folds.
    """
    if len(specs) < 2:
        raise ValueError(f"an ensemble needs at least 2 estimators, got {len(specs)}")
    members = [(f"m{i}_{spec.name}", build_estimator(spec, kind)) for i, spec in enumerate(specs)]
    if method == "mean":
        if kind == "direction":
            return VotingClassifier(members, voting="soft")
        return VotingRegressor(members)
    if method == "stacked":
        if kind == "direction":
            return StackingClassifier(members, final_estimator=LogisticRegression(), cv=3)
        return StackingRegressor(members, final_estimator=Ridge(alpha=1.0), cv=3)
    raise ValueError(f"unknown ensemble method {method!r}; expected 'mean' or 'stacked'")


def build_model(
    estimator: EstimatorSpec | Sequence[EstimatorSpec],
    kind: TargetKind,
    method: EnsembleMethod = "mean",
) -> Model:
    """One estimator, or an ensemble when given two or more specs."""
    if isinstance(estimator, EstimatorSpec):
        return build_estimator(estimator, kind)
    if len(estimator) == 1:
        return build_estimator(estimator[0], kind)
    return build_ensemble(estimator, kind, method)


def predict_scores(model: Model, features: np.ndarray) -> np.ndarray:
    """Predicted return (regressors) or probability of an up move (classifiers)."""
    if is_classifier(model):
        probabilities = model.predict_proba(features)
        classes = list(model.classes_)
        if 1.0 not in classes:
            # A training window with no up moves at all: the model can only say "not up".
            return np.zeros(len(features))
        return np.asarray(probabilities[:, classes.index(1.0)], dtype="float64")
    return np.asarray(model.predict(features), dtype="float64").ravel()


def _native_importance(model: Any) -> np.ndarray | None:
    if isinstance(model, Pipeline):
        return _native_importance(model.steps[-1][1])
    if isinstance(model, VotingRegressor | VotingClassifier):
        parts = [_native_importance(member) for member in model.estimators_]
        if any(p is None for p in parts):
            return None
        mean: np.ndarray = np.mean([_normalised(p) for p in parts if p is not None], axis=0)
        return mean
    if hasattr(model, "feature_importances_"):
        return np.asarray(model.feature_importances_, dtype="float64")
    if hasattr(model, "coef_"):
        # Inputs are standardised, so coefficient magnitudes are comparable across features.
        magnitude: np.ndarray = np.abs(np.asarray(model.coef_, dtype="float64")).reshape(-1)
        return magnitude
    return None


def _normalised(values: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.nan_to_num(values), 0.0, None)
    total = clipped.sum()
    result: np.ndarray = clipped / total if total > 0 else clipped
    return result


def native_importances(model: Model, names: Sequence[str]) -> dict[str, float] | None:
    """Model-native importances (tree impurity, |standardised coefficient|), summing to 1.

    ``None`` when the model has none (knn, histogram boosting, stacking).
    """
    values = _native_importance(model)
    if values is None or len(values) != len(names):
        return None
    return dict(zip(names, _normalised(values).tolist(), strict=True))


def permutation_importances(
    model: Model, features: np.ndarray, target: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """Drop in score when each feature is shuffled (5 repeats, seed 0), negatives clipped to 0,
    normalised to sum to 1 (all zero if no feature helps)."""
    result = permutation_importance(model, features, target, n_repeats=5, random_state=0)
    values = _normalised(np.asarray(result.importances_mean, dtype="float64"))
    return dict(zip(names, values.tolist(), strict=True))


def dump_model(model: Model) -> bytes:
    """Serialise a fitted model with skops; refuses models ``load_model`` would refuse."""
    data: bytes = sio.dumps(model)
    _check_trusted(data)
    return data


#: Bytes a model file may unpack to, and entries it may have: skops files are zip archives,
#: and a deflated giant array is a few kilobytes on the wire.
MAX_MODEL_UNPACKED_BYTES: Final = 256 * 1024 * 1024
MAX_MODEL_ENTRIES: Final = 100_000


def unpacked_size(data: bytes) -> int:
    """What a skops file unpacks to, from its zip directory, refused (``ValueError``) beyond
    ``MAX_MODEL_UNPACKED_BYTES``. The sizes are binding: zipfile stops a member at its declared
    size and fails its CRC, so a lying directory cannot inflate further."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise ValueError(f"not a skops model file: {e}") from e
    total = sum(i.file_size for i in entries)
    if total > MAX_MODEL_UNPACKED_BYTES or len(entries) > MAX_MODEL_ENTRIES:
        raise ValueError(f"the model file unpacks to {total} bytes in {len(entries)} entries; "
                         f"at most {MAX_MODEL_UNPACKED_BYTES} bytes in {MAX_MODEL_ENTRIES}")
    return total


def _check_trusted(data: bytes) -> list[str]:
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"not a skops model file: {e}") from e
    refused = sorted(set(untrusted) - SKOPS_TRUSTED_TYPES)
    if refused:
        raise ValueError(f"model contains untrusted types {refused}; refusing to load it")
    return list(untrusted)


def load_model(data: bytes) -> Model:
    """Load a skops model, refusing (``ValueError`` naming them) types outside the allow-list
    and files that unpack beyond ``MAX_MODEL_UNPACKED_BYTES``."""
    unpacked_size(data)
    trusted = _check_trusted(data)
    try:
        model = sio.loads(data, trusted=trusted)
    except (zipfile.BadZipFile, KeyError, TypeError) as e:
        raise ValueError(f"cannot load skops model: {e}") from e
    if not isinstance(model, _MODEL_TYPES):
        raise ValueError(f"not a quantops model: {type(model).__name__}")
    return model
