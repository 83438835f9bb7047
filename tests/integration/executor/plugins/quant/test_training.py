"""train_model and backtest against real registry, state and executor processes: what gets
registered (metadata, lineage, evaluation artifact), ensembles, refusal of bad data with its
rows, validation warnings in the metadata, and backtests stored against their version."""

from __future__ import annotations

import msgspec
import numpy as np

from quant.data import frame_to_bytes, load_demo_prices
from quant.estimators import load_model
from quant.recipe import from_hyperparameters
from shared import __version__
from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.datasets import DEMO_DATASET
from shared.contracts.executor import TaskStatus
from tests.integration.executor.plugins.quant.helpers import run, train


async def test_a_trained_model_is_registered_with_lineage_and_evaluation(
        qbus: Bus, unique: str) -> None:
    demo = await DatasetClient(qbus).seed_demo()
    model = f"ridge-{unique}"
    result = await train(qbus, model, estimator={"name": "ridge",
                                                 "hyperparameters": {"alpha": 5.0}})
    assert result["ref"] == f"{model}@1" and len(result["folds"]) == 3
    # Each fold says where its training ended: before its test window (embargo included).
    assert all(f["train_start"] <= f["train_end"] < f["test_start"] for f in result["folds"])
    registry = RegistryClient(qbus)
    info, data = await registry.download(result["ref"])
    spec = info.spec
    assert spec.lineage.data_sha256 == demo.sha256
    assert spec.lineage.code_version.startswith(__version__)
    assert spec.lineage.task_id  # the train_model task's id
    assert spec.hyperparameters["alpha"] == 5.0
    recipe = from_hyperparameters(spec.hyperparameters)
    assert recipe.estimators[0].hyperparameters == {"alpha": 5.0}
    assert spec.features == result["features"] and len(spec.features) == 14
    assert spec.metrics["sharpe"] == result["metrics"]["sharpe"]
    assert {"rmse", "mae", "direction_accuracy", "ic", "total_return", "sharpe",
            "max_drawdown", "profit_factor", "hit_rate", "turnover"} <= set(spec.metrics)
    assert spec.data_start is not None and spec.data_start.year == 2008
    assert spec.tags["dataset"] == DEMO_DATASET
    model_obj = load_model(data)
    assert model_obj.predict(np.zeros((1, 14))).shape == (1,)
    _, evaluation = await registry.download(spec.tags["evaluation"])
    doc = msgspec.json.decode(evaluation)
    assert set(doc["importances"]) == set(spec.features)
    assert abs(sum(doc["importances"].values()) - 1.0) < 1e-9
    assert len(doc["predictions"]["prediction"]) == spec.metrics["n"]
    assert min(doc["predictions"]["timestamp"]) > "2008-12-31"  # out of sample only


async def test_an_ensemble_is_one_version(qbus: Bus, unique: str) -> None:
    result = await train(qbus, f"ens-{unique}", estimators=[
        {"name": "ridge"}, {"name": "extra_trees", "hyperparameters": {"n_estimators": 20}}],
        ensemble_method="mean")
    info = await RegistryClient(qbus).get(result["ref"])
    assert info.spec.tags["estimator"] == "ensemble-mean(ridge+extra_trees)"
    assert "m1_extra_trees.n_estimators" in info.spec.hyperparameters


async def test_bad_rows_block_training_and_warnings_reach_the_metadata(
        qbus: Bus, unique: str) -> None:
    frame = load_demo_prices(["AAPL"])
    frame = frame[(frame["timestamp"] >= "2000-06-01") & (frame["timestamp"] <= "2002-12-31")]
    frame = frame.reset_index(drop=True)
    datasets = DatasetClient(qbus)
    await datasets.upload(f"aapl-{unique}", frame_to_bytes(frame))
    body = {"dataset": f"aapl-{unique}", "walk_forward": {"n_splits": 2, "min_train_size": 150},
            "model_name": f"aapl-{unique}"}
    result = await train(qbus, f"aapl-{unique}", **{k: v for k, v in body.items()
                                                     if k != "model_name"}, symbols=None,
                         start=None, end=None)
    info = await RegistryClient(qbus).get(result["ref"])
    assert any("extreme_return" in w for w in result["validation_warnings"])  # 2000-09-29
    assert "extreme_return" in info.spec.description
    assert int(info.spec.tags["validation_warnings"]) >= 1
    frame.loc[30, "volume"] = -5.0
    frame.loc[31, "close"] = float("nan")
    await datasets.upload(f"aapl-bad-{unique}", frame_to_bytes(frame))
    record = await run(qbus, "train_model", {**body, "dataset": f"aapl-bad-{unique}"},
                       expect=TaskStatus.FAILED)
    assert record.error is not None
    message = record.error.message
    assert "negative_volume" in message and "rows 30 (" in message
    assert "non_finite" in message and "31 (" in message
    # Outside the bad rows the same file trains: validation looks at the selection.
    await train(qbus, f"aapl-ok-{unique}", dataset=f"aapl-bad-{unique}", symbols=None,
                start="2001-06-01", end=None,
                walk_forward={"n_splits": 2, "min_train_size": 150})


async def test_backtests_are_stored_against_their_version(qbus: Bus, unique: str) -> None:
    model = f"bt-{unique}"
    await train(qbus, model)
    later = await run(qbus, "backtest", {"model": f"{model}@1", "symbols": ["IBM", "MSFT"],
                                         "start": "2012-01-01", "costs": {"bps": 5}})
    overlap = await run(qbus, "backtest", {"model": f"{model}@1", "symbols": ["IBM"],
                                           "start": "2011-01-01", "end": "2011-12-31"})
    rule = await run(qbus, "backtest", {"strategy": "momentum", "params": {"lookback": 60},
                                        "symbols": ["AAPL"], "start": "2005-01-01"})
    assert isinstance(later.result, dict) and isinstance(overlap.result, dict)
    assert not later.result["warnings"]
    assert any("in-sample" in w for w in overlap.result["warnings"])
    assert later.result["metrics"]["total_cost"] > 0
    keys = [k.key async for k in StateClient(qbus).keys("backtests", prefix=f"{model}.1.")]
    assert len(keys) == 2
    stored = (await StateClient(qbus).get("backtests", keys[0])).value
    assert stored["model"] == f"{model}@1" and len(stored["equity"]) <= 500
    assert isinstance(rule.result, dict) and rule.result["strategy"] == "momentum"
    assert rule.result["stored"].startswith("backtests/strategy-momentum.")
