"""The executor through the gateway: /v1/tasks, workflows, dead letters, SSE, 429 on a full
queue. A real gateway (in-process, the same app ``quantops serve gateway`` runs) in front of
real executors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.executor.support import Cluster
from tests.integration.gateway.support import Gateway, make_user_key, running_gateway
from tests.support import eventually

RELAXED = {"QUANTOPS_GATEWAY_RATE_LIMIT_PER_S": "0",
           "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_PER_S": "0"}


@pytest.fixture(scope="module")
async def gateway(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Gateway]:
    async with running_gateway(cluster.url, tmp_path_factory.mktemp("gw"), **RELAXED) as gw:
        yield gw


@pytest.fixture(scope="module")
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    key = await make_user_key(gateway, "ops", "operator")
    async with gateway.client(key) as client:
        yield client


async def wait_done(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    async with http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        last: dict[str, Any] = {}
        async for line in r.aiter_lines():
            if line.startswith("data:{") or line.startswith("data: {"):  # not "ready"'s
                last = json.loads(line.removeprefix("data:").strip())
        return last


async def test_submit_get_and_follow_a_task_over_http(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/tasks", json={"type": "sleep", "input": {"seconds": 0.3},
                                           "priority": "high"})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    assert r.headers["location"] == f"/v1/tasks/{task_id}"
    events: list[str] = []
    async with http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=20) as s:
        async for line in s.aiter_lines():
            if line.startswith("event:"):
                events.append(line.removeprefix("event:").strip())
    # Every stream opens with "ready" once subscribed; then the task's record and its changes.
    assert events[0] == "ready"
    assert events[-1] == "succeeded" and set(events[1:]) <= {"queued", "running", "succeeded"}
    rec = (await http.get(f"/v1/tasks/{task_id}")).json()
    assert rec["status"] == "succeeded" and rec["result"] == {"slept_s": 0.3}
    assert rec["principal"] == "ops"
    listed = (await http.get("/v1/tasks", params={"status": "succeeded", "type": "sleep",
                                                  "limit": 5})).json()
    assert any(t["id"] == task_id for t in listed["items"])


async def test_http_errors(http: httpx.AsyncClient, gateway: Gateway) -> None:
    r = await http.post("/v1/tasks", json={"type": "nope"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = await http.post("/v1/tasks", json={"type": "noop", "surprise": 1})
    assert r.status_code == 400  # HTTP bodies refuse unknown fields
    assert (await http.get("/v1/tasks/t0000000000000000000000ff")).status_code == 404
    viewer = await make_user_key(gateway, "watcher", "viewer")
    async with gateway.client(viewer) as ro:
        assert (await ro.post("/v1/tasks", json={"type": "noop"})).status_code == 403
        assert (await ro.get("/v1/task-types")).status_code == 200
    assert (await http.post("/v1/tasks/purge", json={"older_than_s": 1e9})).status_code == 403


async def test_cancel_dead_letters_and_workflows_over_http(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/tasks", json={"type": "sleep", "input": {"seconds": 30}})
    task_id = r.json()["task_id"]
    r = await http.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "http"})
    assert r.status_code == 200 and r.json()["cancelled"] is True

    r = await http.post("/v1/tasks", json={"type": "fail", "input": {"retryable": True},
                                           "max_attempts": 2, "backoff_s": 0.05})
    dead_id = r.json()["task_id"]
    assert (await wait_done(http, dead_id))["status"] == "dead"
    dead = (await http.get("/v1/dead-letters", params={"type": "fail"})).json()
    assert any(d["task_id"] == dead_id for d in dead["items"])
    r = await http.post(f"/v1/dead-letters/{dead_id}/resubmit", json={})
    assert r.status_code == 202 and r.json()["resubmitted_from"] == dead_id
    summary = (await http.get("/v1/tasks/failed-summary", params={"window_s": 600})).json()
    assert summary["by_type"].get("fail", 0) >= 1

    r = await http.post("/v1/workflows", json={"tasks": [
        {"name": "a", "type": "noop"}, {"name": "b", "type": "noop", "depends_on": ["a"]}]})
    assert r.status_code == 202, r.text
    wf_id = r.json()["workflow"]["id"]

    async def finished_workflow() -> dict[str, Any] | None:
        wf: dict[str, Any] = (await http.get(f"/v1/workflows/{wf_id}")).json()
        return wf if wf["status"] != "running" else None

    wf = await eventually(finished_workflow, what="the workflow finished")
    assert wf["status"] == "succeeded"
    assert [n["status"] for n in wf["nodes"]] == ["succeeded", "succeeded"]
    r = await http.post("/v1/workflows", json={"tasks": [
        {"name": "a", "type": "noop", "depends_on": ["a"]}]})
    assert r.status_code == 400 and "itself" in r.json()["detail"]


async def test_queue_full_is_429_with_retry_after(new_cluster: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    # No shutdown grace: the task still running at the end need not be waited for.
    async with new_cluster(executors=1, QUANTOPS_EXECUTOR_CONCURRENCY="1",
                           QUANTOPS_EXECUTOR_MAX_QUEUE="2",
                           QUANTOPS_EXECUTOR_QUEUE_FULL_RETRY_AFTER_S="3",
                           QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S="0") as c, \
            running_gateway(c.url, tmp_path / "gw", **RELAXED) as gw, \
            gw.client(gw.admin_key) as admin:
        for _ in range(2):
            r = await admin.post("/v1/tasks", json={"type": "sleep", "input": {"seconds": 5}})
            assert r.status_code == 202
        r = await admin.post("/v1/tasks", json={"type": "sleep", "input": {"seconds": 5}})
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "3"
        assert r.json()["code"] == "queue_full" and "queue full" in r.json()["detail"]
        assert (await admin.get("/v1/tasks")).json()["total"] == 2
        purged = await admin.post("/v1/tasks/purge", json={"older_than_s": 0})
        assert purged.status_code == 200 and purged.json()["purged"] == 0


async def test_live_feed_of_failures(http: httpx.AsyncClient) -> None:
    async def first_failure() -> dict[str, Any]:
        async with http.stream("GET", "/v1/task-events", params={"status": "failed"},
                               timeout=20) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith(("data:{", "data: {")):  # records, not "ready"
                    return json.loads(line.removeprefix("data:").strip())  # type: ignore[no-any-return]
        return {}

    feed = asyncio.ensure_future(first_failure())
    failed: list[str] = []

    async def failure_on_feed() -> bool:
        # The feed subscribes some time after the stream opens: fail tasks until one shows.
        await http.post("/v1/tasks", json={"type": "noop"})
        failed.append((await http.post("/v1/tasks", json={"type": "fail"})).json()["task_id"])
        await asyncio.wait([feed], timeout=0.2)
        return feed.done()

    await eventually(failure_on_feed, what="a failed task on the live feed")
    event = feed.result()
    assert event["id"] in failed and event["status"] == "failed"
