"""Server-sent events through the gateway: task status updates arrive as they happen, and the
stream tokens a browser's EventSource authenticates with work on event streams only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.clients.http import AsyncClient
from shared.contracts.executor import TaskStatus
from tests.gateway_auth import admin_key
from tests.support import System


@pytest.fixture(scope="module")
def key(system: System) -> str:
    return admin_key(system.data_dir)


async def _ready(lines: AsyncIterator[str]) -> None:
    """Read up to the stream's ``ready`` event: from then on nothing published is missed."""
    async for line in lines:
        if line == "event: ready":
            return
    raise AssertionError("the stream ended before its ready event")


async def _records(lines: AsyncIterator[str], task_id: str) -> list[dict[str, object]]:
    """Records of ``task_id`` from an event stream, up to its final one."""
    seen: list[dict[str, object]] = []
    async for line in lines:
        if not line.startswith("data:") or not line[5:].strip().startswith("{"):
            continue
        record = json.loads(line[5:])
        if record["id"] == task_id:
            seen.append(record)
            if record["status"] in {s.value for s in TaskStatus} - {"queued", "running"}:
                return seen
    return seen


async def test_task_feed_delivers_each_status_change(system: System, key: str) -> None:
    url = system.gateway_url
    async with AsyncClient(url, api_key=key) as client:
        token = (await client.auth.stream_token()).token
        async with httpx.AsyncClient(base_url=url, timeout=30) as http, http.stream(
                "GET", "/v1/task-events", params={"access_token": token}) as r:
            # No Authorization header: the stream token in the query is the credential.
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            await asyncio.wait_for(_ready(lines), 10)
            sub = await client.tasks.submit("sleep", {"seconds": 0.3})
            seen = await asyncio.wait_for(_records(lines, sub.task_id), 30)
    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "succeeded" and "running" in statuses, statuses


async def test_client_follows_one_task_to_its_end(system: System, key: str) -> None:
    async with AsyncClient(system.gateway_url, api_key=key) as client:
        sub = await client.tasks.submit("sleep", {"seconds": 0.3})
        statuses = [r.status async for r in client.tasks.events(sub.task_id)]
    assert statuses[-1] == TaskStatus.SUCCEEDED
    assert set(statuses) <= {"queued", "running", "succeeded"}


async def test_stream_tokens_open_event_streams_only(system: System, key: str) -> None:
    url = system.gateway_url
    async with AsyncClient(url, api_key=key) as client:
        created = await client.keys.create(label="sse", role="viewer")
    async with AsyncClient(url, api_key=created.key) as viewer:
        token = (await viewer.auth.stream_token()).token

    async def status(path: str, credential: str) -> int:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http, http.stream(
                "GET", path, params={"access_token": credential}) as r:
            return r.status_code

    assert await status("/v1/task-events", token) == 200
    assert await status("/v1/tasks", token) == 401  # not an event stream: headers only
    assert await status("/v1/task-events", created.key) == 401  # keys never go in URLs
    assert await status("/v1/task-events", token[:-2] + "xx") == 401
    async with AsyncClient(url, api_key=key) as client:
        await client.keys.revoke(created.info.id)
    assert await status("/v1/task-events", token) == 401  # it dies with its key
