"""Name, ref and metadata validation: the registry's first line against hostile input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.registry import names
from shared.contracts.registry import Lineage, MetricFilter, VersionSpec, split_ref
from shared.errors import InvalidRequest

GOOD_MODELS = ["a", "eurusd-direction", "m.v2", "x_1", "0", "a" * 128]
BAD_MODELS = ["", "..", "../x", "a/b", "a\\b", "a..b", ".a", "a.", "-a", "A", "a b", "a\x00",
              "é", "a" * 129, "a/../../etc"]


@pytest.mark.parametrize("name", GOOD_MODELS)
def test_good_model_names(name: str) -> None:
    assert names.model_name(name) == name


@pytest.mark.parametrize("name", BAD_MODELS)
def test_bad_model_names_say_which_rule(name: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        names.model_name(name)
    assert e.value.details["field"] == "model name" and "no '/'" in e.value.message


def test_refs_resolve_to_model_and_selector() -> None:
    assert names.ref("m@7") == ("m", names.Selector(version=7))
    assert names.ref("m@production") == ("m", names.Selector(alias="production"))
    assert names.ref("m@latest")[1].latest and names.ref("m")[1].latest
    assert split_ref("m") == ("m", "latest")
    for bad in ("m@0", "m@-1", "m@../x", "m@Prod", "m@1.5", "../m@1", "m@" + "9" * 20):
        with pytest.raises(InvalidRequest):
            names.ref(bad)


def test_latest_is_not_an_alias_name() -> None:
    with pytest.raises(InvalidRequest):
        names.alias("latest")
    assert names.alias("staging") == "staging"


def test_spec_validation_refuses_each_bad_field() -> None:
    ok = VersionSpec(metrics={"rmse": 0.1}, tags={"desk": "fx"}, features=["a", "b"],
                     lineage=Lineage(data_sha256="a" * 64))
    assert names.spec(ok) is ok
    bad = [
        VersionSpec(metrics={"rmse": float("nan")}),
        VersionSpec(metrics={"../x": 1.0}),
        VersionSpec(tags={"a/b": "x"}),
        VersionSpec(tags={"k": "\x07"}),
        VersionSpec(features=["a", "a"]),
        VersionSpec(lineage=Lineage(data_sha256="not-hex")),
        VersionSpec(hyperparameters={"blob": "x" * 70_000}),
        VersionSpec(data_start=datetime(2024, 1, 2, tzinfo=UTC),
                    data_end=datetime(2024, 1, 1)),  # naive end is read as UTC
        VersionSpec(tags={f"k{i}": "v" for i in range(65)}),
    ]
    for spec in bad:
        with pytest.raises(InvalidRequest):
            names.spec(spec)


def test_metric_filter_parsing() -> None:
    assert MetricFilter.parse("direction_accuracy >= 0.52") == MetricFilter(
        name="direction_accuracy", op=">=", value=0.52)
    assert MetricFilter.parse("rmse<1e-2").value == 0.01
    for bad in ("rmse", "rmse =< 1", "1 < rmse", "rmse < abc", "rm se < 1"):
        with pytest.raises(ValueError):
            MetricFilter.parse(bad)
