"""The quant flow end to end through the gateway, on the shipped real prices: select the demo
dataset, upload a file, sweep (children train and register versions), compare, promote the
best, backtest it on later data, predict and write signals, read the trial history, and see
bad data refused with its rows named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from quant.data import frame_to_bytes, load_demo_prices
from tests.gateway_auth import admin_headers
from tests.support import System, eventually

TRAIN = {"symbols": ["IBM", "MSFT"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 3, "min_train_size": 252}}


@pytest.fixture
async def http(system: System) -> AsyncIterator[httpx.AsyncClient]:
    headers = admin_headers(system.data_dir)
    async with httpx.AsyncClient(base_url=system.gateway_url, headers=headers,
                                 timeout=60) as client:
        yield client


async def run_task(http: httpx.AsyncClient, type_: str, body: dict[str, Any],
                   timeout_s: float = 90) -> dict[str, Any]:
    submitted = await http.post("/v1/tasks", json={"type": type_, "input": body})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]

    async def finished() -> dict[str, Any] | None:
        record: dict[str, Any] = (await http.get(f"/v1/tasks/{task_id}")).json()
        return record if record["status"] not in ("queued", "running") else None

    return await eventually(finished, timeout_s=timeout_s, interval_s=0.2,
                            what=f"{type_} {task_id} finished")


async def test_sweep_promote_backtest_predict(http: httpx.AsyncClient, unique: str) -> None:
    demo = await http.post("/v1/datasets/_demo")
    assert demo.status_code == 200, demo.text
    assert demo.json()["symbols"] == ["AAPL", "GOOG", "IBM", "MSFT"] and demo.json()["valid"]
    model = f"e2e-ridge-{unique}"
    sweep = await run_task(http, "sweep", {
        **TRAIN, "estimator": "ridge", "model_name": model, "strategy": "grid",
        "space": {"alpha": {"type": "choice", "values": [0.1, 10.0, 1000.0]}},
        "metric": "sharpe"})
    assert sweep["status"] == "succeeded", sweep
    result = sweep["result"]
    assert result["succeeded"] == 3 and {t["params"]["alpha"] for t in result["trials"]} == \
        {0.1, 10.0, 1000.0}
    best = result["best"]
    assert best["metrics"]["sharpe"] == max(t["metrics"]["sharpe"] for t in result["trials"])
    assert set(result["trends"]) == {"alpha"} and "alpha" in result["recommended"]

    compare = await http.get(f"/v1/models/{model}/compare", params={"versions": ["1", "2", "3"]})
    assert compare.status_code == 200
    sharpe = next(m for m in compare.json()["metrics"] if m["name"] == "sharpe")
    assert sharpe["winner"] == f"{model}@{best['version']}"
    version = (await http.get(f"/v1/models/{model}/versions/{best['version']}")).json()
    assert version["spec"]["lineage"]["data_sha256"] == demo.json()["sha256"]
    assert version["spec"]["lineage"]["task_id"] == best["task_id"]
    # Trials register concurrently, so the evaluation's version number need not match the
    # model's: follow the tag and check it names this trial's evaluation.
    evaluation_ref = version["spec"]["tags"]["evaluation"]
    assert evaluation_ref.startswith(f"{model}.evaluation@"), evaluation_ref
    evaluation_version = evaluation_ref.rpartition("@")[2]
    evaluation = (await http.get(
        f"/v1/models/{model}.evaluation/versions/{evaluation_version}")).json()
    assert evaluation["spec"]["lineage"]["task_id"] == best["task_id"], evaluation
    promoted = await http.post(f"/v1/models/{model}/promote",
                               json={"version": best["version"], "reason": "best sharpe"})
    assert promoted.status_code == 200 and promoted.json()["version"] == best["version"]

    backtest = await run_task(http, "backtest", {"model": f"{model}@production",
                                                 "symbols": ["IBM", "MSFT"],
                                                 "start": "2012-01-01"})
    assert backtest["status"] == "succeeded", backtest
    bt = backtest["result"]
    assert bt["start"] >= "2012-01-03" and bt["metrics"]["n_periods"] > 200
    assert not any("in-sample" in w for w in bt["warnings"])
    stored = await http.get(f"/v1/state/{bt['stored']}")
    assert stored.status_code == 200
    assert stored.json()["value"]["model"] == f"{model}@{best['version']}"

    predicted = await http.post("/v1/predict", json={"model": f"{model}@production",
                                                     "symbols": ["IBM", "MSFT"]})
    assert predicted.status_code == 200, predicted.text
    reply = predicted.json()
    assert reply["version"] == best["version"]
    assert [p["symbol"] for p in reply["predictions"]] == ["IBM", "MSFT"]
    assert all(p["position"] in (-1.0, 0.0, 1.0) for p in reply["predictions"])
    signals = await http.post("/v1/signals", json={"model": f"{model}@production",
                                                   "symbols": ["IBM"]})
    assert signals.status_code == 200 and signals.json()["signals_written"] == 1
    signal = await http.get(f"/v1/state/signals/{model}.IBM")
    assert signal.json()["value"]["model"] == f"{model}@{best['version']}"

    history = await http.get("/v1/trials", params={"group": model, "metric": "sharpe"})
    assert history.status_code == 200
    trials = history.json()
    assert trials["trials"] == 3 and trials["trend"] in ("improving", "stable", "declining")
    assert trials["best"]["params"]["alpha"] == best["params"]["alpha"]
    assert "alpha" in trials["recommended"]


async def test_uploaded_file_with_bad_rows_blocks_training(http: httpx.AsyncClient,
                                                            unique: str) -> None:
    frame = load_demo_prices(["IBM"]).head(400)
    good = frame_to_bytes(frame, "csv")
    first = await http.put(f"/v1/datasets/ibm-{unique}", content=good,
                           headers={"Content-Type": "text/csv"})
    again = await http.put(f"/v1/datasets/ibm-copy-{unique}", content=good)
    assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
    assert first.json()["sha256"] == again.json()["sha256"]
    frame.loc[7, "low"] = frame.loc[7, "high"] * 2  # low above the body
    bad = await http.put(f"/v1/datasets/ibm-bad-{unique}", content=frame_to_bytes(frame))
    assert bad.status_code == 201 and not bad.json()["valid"]
    record = await run_task(http, "train_model", {"dataset": f"ibm-bad-{unique}",
                                                  "walk_forward": {"n_splits": 2,
                                                                   "min_train_size": 100}})
    assert record["status"] == "failed"
    assert "low_above_body" in record["error"]["message"]
    assert "rows 7 (" in record["error"]["message"]
    listed = await http.get("/v1/datasets", params={"prefix": f"ibm-bad-{unique}"})
    assert listed.json()["items"][0]["valid"] is False
    refused = await http.put(f"/v1/datasets/Bad_Name-{unique}", content=good)
    assert refused.status_code == 400
