"""Pipeline validation: shipped templates pass; unknown kinds, bad params, bad references,
cycles and missing upstream steps are rejected."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from quant.pipeline_steps import ModelParams, SweepParams
from quant.pipelines import (
    TEMPLATES,
    PipelineError,
    PipelineSpec,
    StepSpec,
    decode_pipeline,
    template,
    topological_order,
    validate_pipeline,
)


def pipeline(*steps: tuple[str, str, dict[str, Any], list[str]]) -> PipelineSpec:
    return PipelineSpec(
        name="p",
        steps=[StepSpec(id=i, kind=k, params=p, depends_on=d) for i, k, p, d in steps],
    )


def problems(spec: PipelineSpec) -> list[str]:
    with pytest.raises(PipelineError) as info:
        validate_pipeline(spec)
    assert isinstance(info.value, ValueError)
    return info.value.problems


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_validate(name: str) -> None:
    spec = template(name)
    params = validate_pipeline(spec)
    assert set(params) == {s.id for s in spec.steps}
    order = topological_order(spec)
    for step in spec.steps:
        assert all(order.index(dep) < order.index(step.id) for dep in step.depends_on)


def test_at_least_three_templates_including_the_named_ones() -> None:
    assert {"train-and-backtest", "sweep-and-promote-if-better"} <= set(TEMPLATES)
    assert len(TEMPLATES) >= 3


def test_params_are_typed() -> None:
    params = validate_pipeline(template("sweep-and-promote-if-better"))
    sweep = params["sweep"]
    assert isinstance(sweep, SweepParams)
    assert sweep.space["max_depth"].integer  # type: ignore[union-attr]
    train = validate_pipeline(template("train-and-backtest"))["train"]
    assert isinstance(train, ModelParams) and train.walk_forward.min_train_size == 504


def test_template_copy_is_independent() -> None:
    copy = template("train-and-backtest")
    copy.steps[0].params["symbols"].append("FB")
    assert TEMPLATES["train-and-backtest"].steps[0].params["symbols"] == ["AAPL", "MSFT", "IBM"]
    with pytest.raises(ValueError, match="unknown template"):
        template("nope")


def test_unknown_step_kind() -> None:
    found = problems(pipeline(("load", "load_data", {}, []), ("x", "run_python", {}, ["load"])))
    assert found == [
        "step 'x': unknown kind 'run_python'; known: ['backtest', 'ensemble', 'indicators', "
        "'load_data', 'model', 'promote_if_better', 'risk_report', 'sweep', 'validate']"
    ]


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("load_data", {"source": "ftp"}, "source"),
        ("load_data", {"source": "dataset"}, "needs a dataset id"),
        ("load_data", {"start": "yesterday"}, "Invalid isoformat"),
        ("load_data", {"symbol": "AAPL"}, "unknown field `symbol`"),
        ("model", {"estimator": {"name": "svm"}}, "unknown estimator 'svm'"),
        ("model", {"estimator": {"name": "ridge", "hyperparameters": {"alpah": 1}}}, "alpah"),
        ("model", {"estimator": {"name": "ridge"}, "target": {"kind": "direction"}}, "cannot"),
        ("model", {"walk_forward": {"n_splits": "five"}}, "Expected `int`"),
        ("ensemble", {"estimators": [{"name": "ridge"}]}, "at least 2"),
        (
            "sweep",
            {"estimator": "ridge", "space": {"depth": {"type": "choice", "values": [1]}}},
            "no hyperparameters ['depth']",
        ),
        (
            "sweep",
            {
                "estimator": "ridge",
                "space": {"alpha": {"type": "choice", "values": [1]}},
                "metric": "luck",
            },
            "unknown metric 'luck'",
        ),
        ("backtest", {"strategy": "ma_crossover", "fast": 50, "slow": 20}, "fast < slow"),
        ("indicators", {"features": [{"name": "rsi", "params": {"window": 0}}]}, "outside"),
    ],
)
def test_bad_params(kind: str, params: dict[str, Any], fragment: str) -> None:
    found = problems(
        pipeline(
            ("load", "load_data", {}, [])
            if kind != "load_data"
            else ("other", "load_data", {}, []),
            ("s", kind, params, []),
        )
    )
    assert len(found) == 1 and found[0].startswith(f"step 's' ({kind}): bad params")
    assert fragment in found[0]


def test_unknown_reference_and_duplicates() -> None:
    found = problems(
        pipeline(
            ("load", "load_data", {}, []),
            ("load", "validate", {}, ["load"]),
            ("train", "model", {}, ["lod"]),
            ("Bad Id", "validate", {}, ["Bad Id"]),
        )
    )
    assert "duplicate step id 'load'" in found
    assert "step 'train' depends on unknown step 'lod'" in found
    assert "step 'Bad Id' depends on itself" in found
    assert any(p.startswith("step id 'Bad Id' must match") for p in found)


def test_cycle() -> None:
    spec = pipeline(
        ("load", "load_data", {}, []),
        ("a", "model", {}, ["load", "c"]),
        ("b", "backtest", {}, ["a"]),
        ("c", "risk_report", {}, ["b"]),
    )
    found = problems(spec)
    assert found == ["dependency cycle among steps ['a', 'b', 'c']"]
    with pytest.raises(PipelineError, match="cycle"):
        topological_order(spec)


def test_missing_upstream_steps() -> None:
    found = problems(
        pipeline(
            ("load", "load_data", {}, []),
            ("bt", "backtest", {"strategy": "predictions"}, ["load"]),
            ("promote", "promote_if_better", {"model_name": "m"}, ["bt"]),
            ("orphan", "model", {}, []),
        )
    )
    assert found == [
        "step 'bt' (backtest) needs an upstream ensemble or model or sweep step",
        "step 'promote' (promote_if_better) needs an upstream ensemble or model or sweep step",
        "step 'orphan' (model) needs an upstream load_data step",
    ]


def test_rule_backtest_needs_no_model_and_order_is_stable() -> None:
    spec = pipeline(
        ("load", "load_data", {}, []),
        ("risk", "risk_report", {}, ["bt"]),
        ("check", "validate", {}, ["load"]),
        ("bt", "backtest", {"strategy": "momentum"}, ["load"]),
    )
    validate_pipeline(spec)
    assert topological_order(spec) == ["load", "check", "bt", "risk"]


def test_empty_and_oversized_pipelines() -> None:
    assert problems(PipelineSpec(name="p", steps=[])) == ["a pipeline needs at least one step"]
    many = [StepSpec(id=f"s{i}", kind="load_data") for i in range(51)]
    assert any("at most 50 steps" in p for p in problems(PipelineSpec(name="p", steps=many)))


def test_decode_pipeline_from_json() -> None:
    raw = msgspec.json.encode(TEMPLATES["rule-baseline"])
    assert decode_pipeline(raw) == TEMPLATES["rule-baseline"]
    assert decode_pipeline(msgspec.json.decode(raw)) == TEMPLATES["rule-baseline"]
    with pytest.raises(ValueError, match="unknown field `code`"):
        decode_pipeline(b'{"name": "p", "steps": [], "code": "import os"}')
