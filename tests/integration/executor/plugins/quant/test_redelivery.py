"""A training whose executor is SIGKILLed mid-fit is redelivered to the survivor and registers
exactly one version, one evaluation and one trial record (everything is keyed by the task id)."""

from __future__ import annotations

import signal

import pytest

from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.clients.executor import ExecutorClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.executor import TaskRecord, TaskStatus
from tests.integration.executor.plugins.quant.support import QuantSystem
from tests.support import eventually

# Starts its own state, registry and two executors, then trains, kills and trains again.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def test_a_killed_training_registers_once(fast_redelivery: QuantSystem) -> None:
    bus: Bus = await fast_redelivery.bus()
    try:
        await DatasetClient(bus).seed_demo()
        executor = ExecutorClient(bus)
        task = await executor.submit("train_model", {
            "model_name": "killed", "start": "2005-01-01", "symbols": ["AAPL", "IBM", "MSFT"],
            # Long enough to be killed mid-fit (progress is written at most once a second, so
            # the first fold is seen after ~1 s), short enough for the whole retraining.
            "estimator": {"name": "random_forest",
                          "hyperparameters": {"n_estimators": 40, "max_depth": 6}},
            "walk_forward": {"n_splits": 3, "min_train_size": 504}})

        async def fitting() -> TaskRecord | None:  # progress comes from the worker
            record = await executor.get(task.task_id)
            running = record.status == TaskStatus.RUNNING and (record.progress or 0) > 0
            return record if running else None

        record = await eventually(fitting, timeout_s=15, what="a worker fitting folds")
        pid = int(record.worker.rpartition(":")[2])
        victim = next(p for p in fast_redelivery.processes if p.alive() and p.pid == pid)
        victim.stop(signal.SIGKILL)
        done = await executor.wait(task.task_id, timeout_s=120)
        assert done.status == TaskStatus.SUCCEEDED, (done.error, fast_redelivery.logs())
        assert done.attempts == 2 and done.worker != record.worker
        registry = RegistryClient(bus)
        assert [v.version async for v in registry.iter_versions("killed")] == [1]
        assert [v.version async for v in registry.iter_versions("killed.evaluation")] == [1]
        trials = [k async for k in StateClient(bus).keys("trials", prefix="train_model.killed.")]
        assert [k.key for k in trials] == [f"train_model.killed.{task.task_id}"]
    finally:
        await bus.close()
