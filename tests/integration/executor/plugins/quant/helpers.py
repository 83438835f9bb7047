"""Small helpers of the quant integration tests: run a task and wait for its record."""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskRecord, TaskStatus

#: Two symbols, four years, three folds: a ridge trains in well under a second.
SMALL = {"symbols": ["IBM", "MSFT"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 3, "min_train_size": 252}}


async def run(bus: Bus, type_: str, body: dict[str, Any], *, timeout_s: float = 90,
              expect: TaskStatus | None = TaskStatus.SUCCEEDED) -> TaskRecord:
    client = ExecutorClient(bus)
    submitted = await client.submit(type_, body)
    record = await client.wait(submitted.task_id, timeout_s=timeout_s)
    if expect is not None:
        assert record.status == expect, (record.status, record.error)
    return record


async def train(bus: Bus, model: str, **overrides: Any) -> dict[str, Any]:
    record = await run(bus, "train_model", {**SMALL, "model_name": model, **overrides})
    assert isinstance(record.result, dict)
    return record.result
