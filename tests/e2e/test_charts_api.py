"""What the dashboard's charts read, through the gateway and the typed client, on the shipped
real prices: a version's walk-forward curve with drawdown, its folds and its backtests
(``/v1/models/{name}/versions/{ref}/performance``), and task throughput with queue depth
(``/v1/tasks/activity``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.clients.http import Client
from shared.contracts.executor import TaskRecord
from shared.errors import InvalidRequest, NotFound
from tests.gateway_auth import admin_key
from tests.support import System

TRAIN = {"symbols": ["IBM"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 3, "min_train_size": 252}}


def finished(client: Client, task_id: str, timeout_s: float = 120) -> TaskRecord:
    record = client.tasks.wait(task_id, timeout_s=timeout_s)
    assert record.status == "succeeded", record
    return record


def admin_client(system: System) -> Client:
    return Client(str(system.gateway_url), api_key=admin_key(Path(str(system.data_dir))),
                  timeout_s=60)


def train_and_backtest(client: Client, model: str) -> str:
    """Version 1 of ``model`` (ridge, walk-forward) and one backtest of it; its task id."""
    client.datasets.seed_demo()
    trained = client.tasks.submit("train_model", {**TRAIN, "estimator": {"name": "ridge"},
                                                  "model_name": model})
    finished(client, trained.task_id)
    backtest = client.tasks.submit("backtest", {"model": f"{model}@1", "symbols": ["IBM"],
                                                "start": "2012-01-01"})
    finished(client, backtest.task_id)
    return backtest.task_id


@pytest.mark.timeout(300)
async def test_performance_of_a_trained_and_backtested_version(system: System,
                                                               unique: str) -> None:
    client = admin_client(system)
    model = f"charts-{unique}"
    backtest_id = await asyncio.to_thread(train_and_backtest, client, model)

    perf = await asyncio.to_thread(client.quant.performance, f"{model}@1", points=100)
    assert perf.ref == f"{model}@1" and perf.evaluation.startswith(f"{model}.evaluation@")
    curve = perf.curve
    assert 90 <= len(curve.timestamps) <= 101  # thinned, the deepest point kept
    assert len(curve.equity) == len(curve.drawdown) == len(curve.timestamps)
    assert curve.timestamps == sorted(curve.timestamps)
    assert all(d <= 0 for d in curve.drawdown)
    # The deepest drawdown drawn is the one the training measured on every bar (reported as
    # a positive fraction).
    assert min(curve.drawdown) == pytest.approx(-perf.metrics["max_drawdown"], abs=1e-9)
    assert [f.fold for f in perf.folds] == [0, 1, 2]
    assert all("sharpe" in f.metrics and "ic" in f.metrics for f in perf.folds)
    assert [b.task_id for b in perf.backtests] == [backtest_id]
    bt = perf.backtests[0]
    assert bt.start >= "2012-01-03" and len(bt.curve.equity) > 50
    assert min(bt.curve.drawdown) == pytest.approx(-bt.metrics["max_drawdown"], abs=1e-9)

    with pytest.raises(NotFound):
        await asyncio.to_thread(client.quant.performance, f"{model}@9")
    client.close()


def cli(system: System, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``quantops *argv`` in this process, told only the gateway's port (no client URL)."""
    from cli.main import main

    monkeypatch.delenv("QUANTOPS_CLIENT_URL", raising=False)
    monkeypatch.setenv("QUANTOPS_GATEWAY_PORT", str(urlsplit(str(system.gateway_url)).port))
    monkeypatch.setenv("QUANTOPS_API_KEY", admin_key(Path(str(system.data_dir))))
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return status, out


@pytest.mark.timeout(300)
async def test_cli_prints_the_same_summaries(system: System, unique: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    client, model = admin_client(system), f"cli-charts-{unique}"
    await asyncio.to_thread(train_and_backtest, client, model)
    client.close()
    _, out = await asyncio.to_thread(cli, system, monkeypatch, capsys, "quant", "performance",
                                     f"{model}@1")
    lines = out.splitlines()
    assert lines[0].startswith(f"{model}@1  sharpe ")
    assert lines[1].startswith("walk-forward ") and "worst drawdown" in lines[1]
    assert sum(1 for line in lines if line.split()[:1] in (["1"], ["2"], ["3"])) == 3  # folds
    assert any(set(line.split()[1]) <= set("▁▂▃▄▅▆▇█") for line in lines[1:2])
    _, out = await asyncio.to_thread(cli, system, monkeypatch, capsys, "quant", "trials", model)
    assert "sharpe over the trials" in out
    _, out = await asyncio.to_thread(cli, system, monkeypatch, capsys, "tasks", "activity",
                                     "--window", "600", "--bucket", "300")
    assert out.splitlines()[0].split() == ["from", "submitted", "started", "succeeded",
                                           "failed", "cancelled", "queued", "running"]
    assert len(out.splitlines()) >= 4 and "finished " in out


@pytest.mark.timeout(120)
async def test_activity_counts_tasks_and_queue_depth(system: System) -> None:
    client = admin_client(system)
    before = time.time()
    ids = [client.tasks.submit("noop", {}).task_id for _ in range(3)]
    failed = client.tasks.submit("fail", {"message": "activity"}, max_attempts=1).task_id
    for task_id in ids:
        finished(client, task_id)
    assert client.tasks.wait(failed, timeout_s=60).status == "failed"

    activity = client.tasks.activity(window_s=600, bucket_s=30)
    assert len(activity.buckets) == 20 and activity.bucket_s == 30
    assert activity.buckets[0].start == pytest.approx(activity.until - 600)
    recent = [b for b in activity.buckets if b.start + 30 > before]
    assert sum(b.submitted for b in recent) >= 4  # other tests may add their own
    assert sum(b.succeeded for b in recent) >= 3 and sum(b.failed for b in recent) >= 1
    assert all(b.queued >= 0 and b.running >= 0 for b in activity.buckets)

    with pytest.raises(InvalidRequest):
        client.tasks.activity(window_s=86400, bucket_s=1)  # 86,400 buckets: refused
    client.close()
