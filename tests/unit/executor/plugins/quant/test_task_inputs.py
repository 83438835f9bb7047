"""Task inputs are checked when submitted (the executor decodes them with these schemas), sweep
trials are built deterministically, and pipelines translate into workflows step for step."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from quant.pipelines import TEMPLATES
from quant.search import Range
from services.executor.plugins.quant.tasks.backtest import BacktestInput
from services.executor.plugins.quant.tasks.pipeline import RunPipelineInput, workflow_tasks
from services.executor.plugins.quant.tasks.steps import StepInput
from services.executor.plugins.quant.tasks.sweep import SweepInput, candidates, child_input
from services.executor.plugins.quant.tasks.train import TrainInput, default_model_name
from shared.contracts.datasets import DatasetInfo, ValidationReport

decode = msgspec.json.decode


@pytest.mark.parametrize(("body", "needle"), [
    (b'{"estimator": {"name": "ridge", "hyperparameters": {"depth": 3}}}', "depth"),
    (b'{"estimator": {"name": "ridge", "hyperparameters": {"n_jobs": 4}}}', "n_jobs"),
    (b'{"estimator": {"name": "logistic_regression"}}', "cannot predict a 'regression'"),
    (b'{"estimator": {"name": "ridge"}, "estimators": [{"name": "lasso"}]}', "not both"),
    (b'{"start": "2012-01-01", "end": "2011-01-01"}', "start must be before end"),
    (b'{"start": "yesterday"}', "ISO dates"),
    (b'{"model_name": "../etc"}', "model_name"),
    (b'{"features": [{"name": "rsi", "params": {"window": 0}}]}', "window"),
])
def test_bad_train_inputs_are_refused(body: bytes, needle: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=needle):
        decode(body, type=TrainInput)


def test_a_train_input_makes_its_recipe() -> None:
    inp = decode(b'{"estimators": [{"name": "ridge"}, {"name": "extra_trees"}],'
                 b' "ensemble_method": "stacked", "target": {"kind": "regression", '
                 b'"horizon": 5}}', type=TrainInput)
    recipe = inp.recipe()
    assert [e.name for e in recipe.estimators] == ["ridge", "extra_trees"]
    assert recipe.target.horizon == 5 and len(recipe.features) == 12
    info = DatasetInfo(name="demo_prices", sha256="0" * 64, format="csv", size_bytes=1, rows=1,
                       symbols=[], start=None, end=None, frequency="1d", valid=True,
                       report=ValidationReport(), bucket="b", object_name="o",
                       created_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert default_model_name(["ridge", "extra_trees"], info) == "demo-prices-ridge-extra-trees"


def test_backtest_takes_a_model_or_a_strategy() -> None:
    assert decode(b'{"strategy": "momentum"}', type=BacktestInput).strategy == "momentum"
    for body in (b"{}", b'{"model": "m@1", "strategy": "momentum"}'):
        with pytest.raises(msgspec.ValidationError, match="exactly one"):
            decode(body, type=BacktestInput)


def sweep(**extra: object) -> SweepInput:
    body = {"estimator": "ridge", "space": {"alpha": {"type": "range", "low": 0.1,
                                                      "high": 10.0}}, **extra}
    return msgspec.convert(body, SweepInput)


def test_sweep_trials_are_deterministic_and_never_repeated() -> None:
    inp = sweep(n_trials=5, seed=3)
    first = candidates(inp, dict(inp.space), 0, [])
    assert first == candidates(inp, dict(inp.space), 0, []) and len(first) == 5
    assert candidates(inp, dict(inp.space), 0, first) == []
    grid = sweep(strategy="grid", n_trials=50,
                 space={"alpha": {"type": "choice", "values": [1.0, 2.0, 3.0]}})
    assert candidates(grid, dict(grid.space), 0, [{"alpha": 2.0}]) == [{"alpha": 1.0},
                                                                        {"alpha": 3.0}]
    assert isinstance(inp.space["alpha"], Range)


def test_a_trial_is_a_train_model_input_with_the_sweep_tags() -> None:
    inp = sweep(symbols=["IBM"], base={"fit_intercept": False}, evaluation=False)
    child = child_input(inp, {"alpha": 2.5}, "m", "sweep-1", "1.3")
    train = msgspec.convert(child, TrainInput)
    assert train.estimator is not None
    assert train.estimator.hyperparameters == {"fit_intercept": False, "alpha": 2.5}
    assert train.symbols == ["IBM"] and not train.evaluation and train.register
    assert train.tags == {"sweep": "sweep-1", "trial": "1.3"} and train.model_name == "m"


@pytest.mark.parametrize(("extra", "needle"), [
    ({"space": {}}, "non-empty"), ({"metric": "luck"}, "unknown metric"),
    ({"base": {"max_depth": 3}}, "max_depth"), ({"rounds": 9}, "rounds"),
])
def test_bad_sweeps_are_refused(extra: dict[str, object], needle: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=needle):
        sweep(**extra)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_translates_into_a_workflow(name: str) -> None:
    spec = RunPipelineInput(template=name).pipeline()
    nodes = workflow_tasks(spec, "run-1")
    assert [n.name for n in nodes] == [s.id for s in spec.steps]  # templates are in order
    for node, step in zip(nodes, spec.steps, strict=True):
        assert node.type == "pipeline_step" and node.depends_on == step.depends_on
        step_input = msgspec.convert(node.input, StepInput)  # what the node will decode
        assert step_input.kind == step.kind and step_input.run == "run-1"


def test_pipeline_inputs_are_validated_and_overrides_merge() -> None:
    inp = RunPipelineInput(template="rule-baseline", overrides={"backtest": {"fast": 5}})
    backtest = next(s for s in inp.pipeline().steps if s.id == "backtest")
    assert backtest.params == {"strategy": "ma_crossover", "fast": 5, "slow": 50}
    for kwargs, needle in (({}, "exactly one"), ({"template": "nope"}, "unknown template"),
                           ({"template": "rule-baseline", "overrides": {"backtest": {
                               "fast": 80}}}, "fast < slow"),
                           ({"spec": {"name": "x", "steps": []}}, "at least one step")):
        with pytest.raises(ValueError, match=needle):
            RunPipelineInput(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown step kind"):
        StepInput(pipeline="p", run="r", step="s", kind="shell", params={})


def test_a_direction_target_without_estimator_gets_a_classifier() -> None:
    from services.executor.plugins.quant.tasks.train import TrainInput

    direction = msgspec.convert({"target": {"kind": "direction"}}, TrainInput)
    assert [e.name for e in direction.chosen()] == ["logistic_regression"]
    assert [e.name for e in TrainInput().chosen()] == ["ridge"]
