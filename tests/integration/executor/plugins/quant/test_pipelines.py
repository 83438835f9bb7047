"""run_pipeline against real services: shipped templates run as executor workflows, submitted
specs are validated before anything queues (never executed as code), and a failing step stops
its descendants."""

from __future__ import annotations

import pytest

from quant.data import frame_to_bytes, load_demo_prices
from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.clients.executor import ExecutorClient
from shared.clients.quant import QuantClient
from shared.errors import InvalidRequest
from tests.integration.executor.plugins.quant.helpers import run

FAST = {"walk_forward": {"n_splits": 2, "min_train_size": 504}}


async def test_templates_are_listed(qbus: Bus) -> None:
    names = {t.name for t in (await QuantClient(qbus).templates()).templates}
    assert names == {"train-and-backtest", "sweep-and-promote-if-better", "ensemble-and-risk",
                     "rule-baseline"}


async def test_shipped_templates_run(qbus: Bus, unique: str) -> None:
    rule = await run(qbus, "run_pipeline", {"template": "rule-baseline", "wait": True})
    assert isinstance(rule.result, dict) and rule.result["status"] == "succeeded"
    assert rule.result["steps"]["risk"]["summary"]["risk"]["var"] > 0
    record = await run(qbus, "run_pipeline", {
        "template": "train-and-backtest", "wait": True,
        "overrides": {"train": {**FAST, "model_name": f"tb-{unique}"}}}, timeout_s=120)
    result = record.result
    assert isinstance(result, dict) and result["status"] == "succeeded", result
    steps = result["steps"]
    assert steps["train"]["summary"]["ref"] == f"tb-{unique}@1"
    # The backtest trades the training's out-of-sample predictions: same numbers.
    assert steps["backtest"]["summary"]["metrics"]["sharpe"] == pytest.approx(
        steps["train"]["summary"]["metrics"]["sharpe"])
    assert set(steps) == {"load", "check", "features", "train", "backtest", "risk"}


async def test_specs_are_validated_at_submission(qbus: Bus) -> None:
    client = ExecutorClient(qbus)
    load = {"id": "load", "kind": "load_data", "params": {}}
    bad = [
        ({"name": "x", "steps": [load, {"id": "run", "kind": "exec", "params": {}}]},
         "unknown kind"),
        ({"name": "x", "steps": [load, {"id": "check", "kind": "validate", "depends_on": ["load"],
                                        "params": {"code": "__import__('os').system('id')"}}]},
         "code"),
        ({"name": "x", "steps": [{**load, "depends_on": ["b"]},
                                 {"id": "b", "kind": "validate", "depends_on": ["load"]}]},
         "cycle"),
        ({"name": "x", "steps": [{"id": "bt", "kind": "backtest", "params": {}}]},
         "needs an upstream"),
    ]
    for spec, needle in bad:
        with pytest.raises(InvalidRequest, match=needle):
            await client.submit("run_pipeline", {"spec": spec})
    with pytest.raises(InvalidRequest, match="unknown steps"):
        await client.submit("run_pipeline", {"template": "rule-baseline",
                                             "overrides": {"nope": {}}})


async def test_a_failing_step_stops_its_descendants(qbus: Bus, unique: str) -> None:
    frame = load_demo_prices(["MSFT"]).head(300).reset_index(drop=True)
    frame.loc[5, "open"] = 0.0
    await DatasetClient(qbus).upload(f"msft-bad-{unique}", frame_to_bytes(frame))
    spec = {"name": f"p-{unique}", "steps": [
        {"id": "load", "kind": "load_data",
         "params": {"source": "dataset", "dataset": f"msft-bad-{unique}"}},
        {"id": "check", "kind": "validate", "depends_on": ["load"]},
        {"id": "bt", "kind": "backtest", "depends_on": ["check"],
         "params": {"strategy": "momentum"}}]}
    record = await run(qbus, "run_pipeline", {"spec": spec, "wait": True})
    result = record.result
    assert isinstance(result, dict) and result["status"] == "failed"
    assert result["steps"]["check"]["status"] == "failed"
    assert result["steps"]["bt"]["status"] == "cancelled"
    check = await ExecutorClient(qbus).get(result["steps"]["check"]["task_id"])
    assert check.error is not None and "non_positive_price" in check.error.message
