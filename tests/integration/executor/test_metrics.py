"""Prometheus metrics of a running executor, scraped from its metrics port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.natsserver import free_port
from tests.support import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def flushed(got: Samples) -> bool:
    """Every task's end is counted and the timed-out task's worker replaced."""
    def at_least(n: float, name: str, **labels: str) -> bool:
        return got.get((name, frozenset(labels.items())), -1.0) >= n

    finished = "quantops_executor_tasks_finished_total"
    return (at_least(3, finished, type="noop", outcome="succeeded")
            and at_least(1, finished, type="fail", outcome="dead")
            and at_least(1, "quantops_executor_timeouts_total", type="cpu_burn")
            and at_least(1, "quantops_executor_workers_replaced_total"))


async def test_executor_metrics(new_cluster: Callable[..., Any]) -> None:
    port = free_port()
    async with new_cluster(executors=1, QUANTOPS_METRICS_PORT=str(port)) as c:
        client = await c.client()
        ids = [(await client.submit("noop", {})).task_id for _ in range(3)]
        ids.append((await client.submit("fail", {"retryable": True}, max_attempts=2,
                                        backoff_s=0.05)).task_id)
        ids.append((await client.submit("cpu_burn", {"seconds": 10}, timeout_s=0.3)).task_id)
        await client.wait_many(ids, timeout_s=20)
        # Counters are flushed every 100 ms: scrape until they show every end.
        async with httpx.AsyncClient() as http:

            async def flushed_samples() -> Samples | None:
                got = samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
                return got if flushed(got) else None

            got = await eventually(flushed_samples, timeout_s=5, interval_s=0.05,
                                   what="every task's end in the executor's metrics")

    def value(name: str, **labels: str) -> float:
        return got.get((name, frozenset(labels.items())), -1.0)

    assert value("quantops_executor_tasks_started_total", type="noop") == 3
    assert value("quantops_executor_tasks_finished_total", type="noop", outcome="succeeded") == 3
    assert value("quantops_executor_tasks_finished_total", type="fail", outcome="retried") == 1
    assert value("quantops_executor_tasks_finished_total", type="fail", outcome="dead") == 1
    assert value("quantops_executor_retries_total", type="fail") == 1
    assert value("quantops_executor_dead_letters_total", type="fail") == 1
    assert value("quantops_executor_timeouts_total", type="cpu_burn") == 1
    assert value("quantops_executor_task_duration_seconds_count", type="noop") == 3
    assert value("quantops_executor_workers_replaced_total") >= 1
    assert value("quantops_executor_worker_utilisation") >= 0
    assert value("quantops_executor_slots") == 8
    for p in ("high", "normal", "low"):
        assert value("quantops_executor_queue_depth", priority=p) >= 0
