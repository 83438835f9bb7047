"""Artifact formats: skops by default with an allow-list, pickle only on request, and the
registry's sniffing of disguised pickles."""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from services.registry.artifacts import sniff
from shared.clients.registry_formats import dump_skops, load_artifact
from shared.contracts.registry import ArtifactFormat
from shared.errors import Forbidden

X = np.random.default_rng(0).normal(size=(60, 3))
Y = X @ np.array([1.0, -2.0, 0.5])


def test_skops_round_trip_of_a_pipeline_and_a_trusted_tree_model() -> None:
    for model in (make_pipeline(StandardScaler(), Ridge()).fit(X, Y),
                  HistGradientBoostingRegressor(max_iter=5).fit(X, Y)):
        data = dump_skops(model)
        assert data[:4] == b"PK\x03\x04"
        loaded = load_artifact(data, ArtifactFormat.SKOPS)
        np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_skops_types_outside_the_allow_list_are_refused() -> None:
    data = dump_skops({"scaler": StandardScaler().fit(X), "ratio": Fraction(1, 3)})
    with pytest.raises(Forbidden) as e:
        load_artifact(data, ArtifactFormat.SKOPS)
    assert e.value.details["untrusted_types"] == ["fractions.Fraction"]
    loaded = load_artifact(data, ArtifactFormat.SKOPS, trusted=["fractions.Fraction"])
    assert loaded["ratio"] == Fraction(1, 3)


def test_pickle_and_joblib_need_an_explicit_opt_in() -> None:
    blob = pickle.dumps({"a": 1})
    for fmt in (ArtifactFormat.PICKLE, ArtifactFormat.JOBLIB):
        with pytest.raises(Forbidden):
            load_artifact(blob, fmt)
    assert load_artifact(blob, ArtifactFormat.PICKLE, allow_pickle=True) == {"a": 1}


def test_json_and_opaque_formats() -> None:
    assert load_artifact(b'{"w": [1, 2]}', ArtifactFormat.JSON) == {"w": [1, 2]}
    assert load_artifact(b"\x00\x01", ArtifactFormat.ONNX) == b"\x00\x01"


def test_sniff_catches_pickles_in_disguise_and_non_zip_skops() -> None:
    blob = pickle.dumps([1, 2, 3])
    assert "pickle" in sniff(blob, "binary")
    assert "pickle" in sniff(blob, "skops")
    assert sniff(blob, "pickle") == ""
    assert "zip" in sniff(b"hello", "skops")
    assert sniff(dump_skops(Ridge().fit(X, Y)), "skops") == ""
    assert sniff(b'{"a": 1}', "json") == ""
