"""Estimator allow-list, hyperparameter checks, ensembles, and the skops round trip."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline

from quant.estimators import (
    SKOPS_TRUSTED_TYPES,
    build_ensemble,
    build_estimator,
    build_model,
    dump_model,
    estimator_names,
    hyperparameter_names,
    load_model,
    native_importances,
    permutation_importances,
    predict_scores,
)
from quant.specs import ESTIMATOR_NAMES, EstimatorSpec, Scalar, TargetKind

RNG = np.random.default_rng(0)
X = RNG.normal(size=(160, 4))
Y = 0.01 * X[:, 0] - 0.005 * X[:, 1] + 0.002 * RNG.normal(size=160)
LABELS = (Y > 0).astype(float)
KINDS: tuple[TargetKind, ...] = ("regression", "direction")
ALL = [(k, n) for k in KINDS for n in estimator_names(k)]


def fit(model: Any, kind: TargetKind) -> Any:
    return model.fit(X, Y if kind == "regression" else LABELS)


def test_every_name_is_available_for_some_kind() -> None:
    assert set(estimator_names("regression")) | set(estimator_names("direction")) == ESTIMATOR_NAMES


@pytest.mark.parametrize(("kind", "name"), ALL)
def test_round_trip_every_allowed_estimator(kind: TargetKind, name: str) -> None:
    model = fit(build_estimator(EstimatorSpec(name=name), kind), kind)
    data = dump_model(model)
    assert set(sio.get_untrusted_types(data=data)) <= SKOPS_TRUSTED_TYPES
    loaded = load_model(data)
    np.testing.assert_array_equal(predict_scores(loaded, X), predict_scores(model, X))


@pytest.mark.parametrize(
    ("kind", "method"), list(itertools.product(("regression", "direction"), ("mean", "stacked")))
)
def test_round_trip_ensembles(kind: TargetKind, method: str) -> None:
    names = estimator_names(kind)
    specs = [EstimatorSpec(name=n, hyperparameters=_small(n)) for n in names]
    model = fit(build_ensemble(specs, kind, method), kind)  # type: ignore[arg-type]
    loaded = load_model(dump_model(model))
    np.testing.assert_allclose(predict_scores(loaded, X), predict_scores(model, X))


def _small(name: str) -> dict[str, Scalar]:
    if name in {"random_forest", "extra_trees", "gradient_boosting"}:
        return {"n_estimators": 5}
    return {"max_iter": 5} if name == "hist_gradient_boosting" else {}


def test_trusted_list_is_exactly_what_the_allow_list_needs() -> None:
    needed: set[str] = set()
    for kind, name in ALL:
        data = sio.dumps(fit(build_estimator(EstimatorSpec(name=name), kind), kind))
        needed |= set(sio.get_untrusted_types(data=data))
    for algorithm, metric in itertools.product(
        ("ball_tree", "kd_tree"), ("euclidean", "manhattan", "chebyshev", "minkowski")
    ):
        spec = EstimatorSpec(
            name="knn", hyperparameters={"algorithm": algorithm, "metric": metric, "p": 3}
        )
        model = fit(build_estimator(spec, "regression"), "regression")
        needed |= set(sio.get_untrusted_types(data=sio.dumps(model)))
        load_model(dump_model(model))
    pair = [EstimatorSpec(name="ridge"), EstimatorSpec(name="knn")]
    needed |= set(
        sio.get_untrusted_types(
            data=sio.dumps(fit(build_ensemble(pair, "regression"), "regression"))
        )
    )
    assert needed == SKOPS_TRUSTED_TYPES


class Sneaky(RegressorMixin, BaseEstimator):
    """Stands for any class outside the allow-list."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Sneaky:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.mean_)


def test_untrusted_type_is_refused() -> None:
    data = sio.dumps(Pipeline([("model", Sneaky())]).fit(X, Y))
    with pytest.raises(ValueError, match=r"untrusted types .*Sneaky"):
        load_model(data)
    with pytest.raises(ValueError, match="untrusted types"):
        dump_model(Pipeline([("model", Sneaky())]).fit(X, Y))


def test_garbage_and_non_models_are_refused() -> None:
    with pytest.raises(ValueError, match="not a skops model"):
        load_model(b"definitely not a zip file")
    with pytest.raises(ValueError, match="not a quantops model"):
        load_model(sio.dumps(np.arange(3)))


def test_pipeline_shape_and_determinism() -> None:
    ridge = build_estimator(EstimatorSpec(name="ridge"), "regression")
    forest = build_estimator(EstimatorSpec(name="random_forest"), "regression")
    assert [n for n, _ in ridge.steps] == ["scale", "model"]
    assert [n for n, _ in forest.steps] == ["model"]
    assert forest.named_steps["model"].random_state == 0
    a = fit(build_estimator(EstimatorSpec(name="extra_trees"), "regression"), "regression")
    b = fit(build_estimator(EstimatorSpec(name="extra_trees"), "regression"), "regression")
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_hyperparameters_are_applied_and_checked() -> None:
    model = build_estimator(
        EstimatorSpec(name="ridge", hyperparameters={"alpha": 3.0}), "regression"
    )
    assert model.named_steps["model"].alpha == 3.0
    with pytest.raises(ValueError, match="unknown hyperparameters \\['alpah'\\]"):
        build_estimator(EstimatorSpec(name="ridge", hyperparameters={"alpah": 1}), "regression")
    with pytest.raises(ValueError, match="'n_jobs' cannot be set"):
        build_estimator(
            EstimatorSpec(name="random_forest", hyperparameters={"n_jobs": 8}), "regression"
        )
    with pytest.raises(ValueError, match="metric must be one of"):
        build_estimator(
            EstimatorSpec(name="knn", hyperparameters={"metric": "cosine"}), "regression"
        )
    assert "n_jobs" not in hyperparameter_names("random_forest", "direction")


def test_kind_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="cannot predict a 'direction' target"):
        build_estimator(EstimatorSpec(name="ridge"), "direction")
    with pytest.raises(ValueError, match="cannot predict a 'regression' target"):
        build_estimator(EstimatorSpec(name="logistic_regression"), "regression")


def test_ensemble_needs_two_and_a_known_method() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([EstimatorSpec(name="ridge")], "regression")
    with pytest.raises(ValueError, match="unknown ensemble method"):
        build_ensemble([EstimatorSpec(name="ridge")] * 2, "regression", "median")  # type: ignore[arg-type]
    assert isinstance(build_model([EstimatorSpec(name="ridge")], "regression"), Pipeline)


def test_classifier_scores_are_probabilities_of_up() -> None:
    model = fit(
        build_estimator(EstimatorSpec(name="logistic_regression"), "direction"), "direction"
    )
    scores = predict_scores(model, X)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.corrcoef(scores, X[:, 0])[0, 1] > 0.5  # up is driven by feature 0


def test_importances() -> None:
    names = ["a", "b", "c", "d"]
    ridge = fit(build_estimator(EstimatorSpec(name="ridge"), "regression"), "regression")
    native = native_importances(ridge, names)
    assert native is not None and sum(native.values()) == pytest.approx(1.0)
    assert max(native, key=native.__getitem__) == "a"
    knn = fit(build_estimator(EstimatorSpec(name="knn"), "regression"), "regression")
    assert native_importances(knn, names) is None
    perm = permutation_importances(knn, X, Y, names)
    assert sum(perm.values()) == pytest.approx(1.0)
    assert max(perm, key=perm.__getitem__) == "a"
