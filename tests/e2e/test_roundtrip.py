"""HTTP through the gateway to each service and back, as a user of the API does it, and a
system that keeps answering across a nats-server restart."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.natsserver import EmbeddedNats, free_port
from tests.gateway_auth import admin_headers
from tests.support import ServiceProcess, System, eventually, wait_healthy


@pytest.fixture
async def http(system: System) -> httpx.AsyncClient:
    headers = admin_headers(system.data_dir)
    async with httpx.AsyncClient(base_url=system.gateway_url, headers=headers,
                                 timeout=15) as client:
        yield client  # type: ignore[misc]


async def test_state_put_then_get(http: httpx.AsyncClient, unique: str) -> None:
    put = await http.put(f"/v1/state/e2e{unique}/positions/AAPL", json={"value": {"qty": 100}})
    assert put.status_code in (200, 201), put.text
    etag = put.headers["etag"]
    got = await http.get(f"/v1/state/e2e{unique}/positions/AAPL")
    assert got.status_code == 200
    assert got.json()["value"] == {"qty": 100}
    assert got.headers["etag"] == etag
    stale = await http.put(f"/v1/state/e2e{unique}/positions/AAPL", json={"value": {"qty": 1}},
                           headers={"If-Match": '"999999"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")


async def test_registry_register_then_download(http: httpx.AsyncClient, unique: str) -> None:
    artifact = b'{"weights": [0.1, 0.2, 0.3]}'
    begin = await http.post(f"/v1/models/e2e-{unique}/uploads", json={
        "spec": {"format": "json", "metrics": {"rmse": 0.01, "sharpe": 1.2},
                 "features": ["ret_1", "rsi_14"], "tags": {"suite": "e2e"}},
        "size_bytes": len(artifact)})
    assert begin.status_code == 201, begin.text
    upload_id = begin.json()["upload_id"]
    put = await http.put(f"/v1/models/e2e-{unique}/uploads/{upload_id}", content=artifact)
    assert put.status_code == 201, put.text
    version = put.json()["version"]
    info = await http.get(f"/v1/models/e2e-{unique}/versions/{version}")
    assert info.status_code == 200
    assert info.json()["artifact"]["sha256"] == hashlib.sha256(artifact).hexdigest()
    down = await http.get(f"/v1/models/e2e-{unique}/versions/{version}/artifact")
    assert down.status_code == 200 and down.content == artifact


async def test_executor_submit_then_status(http: httpx.AsyncClient) -> None:
    sub = await http.post("/v1/tasks", json={"type": "noop", "input": {}})
    assert sub.status_code == 202, sub.text
    task_id = sub.json()["task_id"]

    async def succeeded() -> bool:
        return bool((await http.get(f"/v1/tasks/{task_id}")).json()["status"] == "succeeded")

    await eventually(succeeded, timeout_s=15, interval_s=0.1, what="the task succeeded")


async def test_unknown_task_type_is_a_clear_400(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/tasks", json={"type": "no_such_task", "input": {}})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid_request" and body["correlation_id"]


@pytest.mark.slow
async def test_gateway_and_state_keep_serving_across_nats_server_restart(
    nats_factory: Callable[..., EmbeddedNats], spawn: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    server = nats_factory()
    port = free_port()
    spawn("state", server.url)
    spawn("gateway", server.url, QUANTOPS_GATEWAY_PORT=str(port))
    await wait_healthy(server.url, "state")
    await wait_healthy(server.url, "gateway")
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, headers=admin_headers(tmp_path / "data"),
                                 timeout=5) as http:
        assert (await http.put("/v1/state/restart/k", json={"value": 1})).status_code in (200, 201)
        server.stop()
        down = await http.get("/v1/state/restart/k")
        assert down.status_code == 503  # a clear "unavailable", not a hang or a 500
        server.start()

        async def answered() -> httpx.Response | None:
            got = await http.get("/v1/state/restart/k")
            return got if got.status_code == 200 else None

        got = await eventually(answered, timeout_s=20, interval_s=0.25, what="state back")
        assert got.json()["value"] == 1  # JetStream kept it on disk
