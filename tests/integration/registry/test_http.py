"""The registry through the gateway's ``/v1/models`` routes: streamed upload and download,
queries, lifecycle, and the same refusals as over NATS, as problem+json."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.natsserver import free_port
from tests.gateway_auth import admin_key
from tests.integration.registry.support import Stack, connect, new_stack
from tests.support import eventually

LIMIT = 4 * 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture(scope="module")
async def http(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    with new_stack(tmp_path_factory.mktemp("http")) as stack:
        await stack.start(QUANTOPS_REGISTRY_MAX_ARTIFACT_BYTES=str(LIMIT))
        port = free_port()
        await stack.start("gateway", QUANTOPS_GATEWAY_PORT=str(port))
        base = f"http://127.0.0.1:{port}"
        await _wait_up(base)
        key = await asyncio.to_thread(admin_key, stack.data_dir)
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            client.stack = stack  # type: ignore[attr-defined]
            yield client


async def _wait_up(base: str, timeout_s: float = 30) -> None:
    async with httpx.AsyncClient(base_url=base) as probe:
        async def up() -> bool:
            try:
                return (await probe.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(up, timeout_s=timeout_s, interval_s=0.1, what="the gateway up")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]


async def _register(http: httpx.AsyncClient, model: str, data: bytes,
                    metrics: dict[str, float]) -> dict:  # type: ignore[type-arg]
    r = await http.post(f"/v1/models/{model}/uploads", json={
        "spec": {"format": "binary", "metrics": metrics, "tags": {"desk": "fx"}}})
    assert r.status_code == 201, r.text
    upload_id = r.json()["upload_id"]
    # No Content-Length: a chunked, streamed body of unknown size.
    r = await http.put(f"/v1/models/{model}/uploads/{upload_id}", content=_chunks(data))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_streamed_upload_and_download(http: httpx.AsyncClient, unique: str) -> None:
    model = f"web-{unique}"
    data = os.urandom(3 * 1024 * 1024 + 11)
    v = await _register(http, model, data, {"rmse": 0.01})
    assert v["version"] == 1 and v["artifact"]["sha256"] == hashlib.sha256(data).hexdigest()
    got = bytearray()
    async with http.stream("GET", f"/v1/models/{model}/versions/1/artifact") as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(data))
        assert r.headers["etag"] == f'"{v["artifact"]["sha256"]}"'
        async for piece in r.aiter_bytes():
            got += piece
    assert bytes(got) == data


async def test_queries_and_lifecycle(http: httpx.AsyncClient, unique: str) -> None:
    model = f"flow-{unique}"
    for rmse in (0.03, 0.01, 0.02):
        await _register(http, model, os.urandom(1000), {"rmse": rmse, "sharpe": 1 / rmse})
    r = await http.get(f"/v1/models/{model}/versions",
                       params={"metric": ["rmse<0.025"], "tag": "desk:fx", "sort": "rmse"})
    assert [v["version"] for v in r.json()["items"]] == [2, 3]
    r = await http.get(f"/v1/models/{model}/compare", params={"versions": "1,2"})
    rmse = next(m for m in r.json()["metrics"] if m["name"] == "rmse")
    assert rmse["winner"] == f"{model}@2"
    assert (await http.post(f"/v1/models/{model}/promote",
                            json={"version": 2, "reason": "best"})).json()["version"] == 2
    await http.post(f"/v1/models/{model}/promote", json={"version": 3})
    r = await http.post(f"/v1/models/{model}/rollback", json={"reason": "oops"})
    assert r.json()["version"] == 2
    assert (await http.get(f"/v1/models/{model}/versions/production")).json()["version"] == 2
    r = await http.delete(f"/v1/models/{model}/versions/2")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = await http.post(f"/v1/models/{model}/cleanup", json={"keep": 1})
    assert r.json()["deleted"] == [f"{model}@1"]
    audit = (await http.get(f"/v1/models/{model}/audit")).json()["items"]
    assert audit[0]["action"] == "cleanup" and audit[0]["principal"] == "admin"
    assert (await http.get("/v1/models", params={"prefix": model})).json()["items"][0][
        "aliases"] == {"production": 2}


@pytest.mark.parametrize("path", ["/v1/models/..%2F..%2Fetc/versions",
                                  "/v1/models/%2E%2E/versions/1",
                                  "/v1/models/a%00b/versions/1/artifact",
                                  "/v1/models/ok/versions/..%2F1"])
async def test_traversal_attempts_are_refused(http: httpx.AsyncClient, path: str) -> None:
    r = await http.get(path)
    assert r.status_code in (400, 404), r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_oversized_upload_is_413(http: httpx.AsyncClient, unique: str) -> None:
    model = f"huge-{unique}"
    r = await http.post(f"/v1/models/{model}/uploads", json={"spec": {"format": "binary"},
                                                             "size_bytes": LIMIT + 1})
    assert r.status_code == 413 and r.json()["details"]["max_bytes"] == LIMIT
    r = await http.post(f"/v1/models/{model}/uploads", json={"spec": {"format": "binary"}})
    upload_id = r.json()["upload_id"]
    r = await http.put(f"/v1/models/{model}/uploads/{upload_id}", content=os.urandom(LIMIT + 1))
    assert r.status_code == 413, r.text  # Content-Length checked before reading
    r = await http.post(f"/v1/models/{model}/uploads", json={"spec": {"format": "binary"}})
    upload_id = r.json()["upload_id"]
    r = await http.put(f"/v1/models/{model}/uploads/{upload_id}",
                       content=_chunks(os.urandom(LIMIT + CHUNK)))
    assert r.status_code == 413, r.text  # no length: counted while streaming
    assert (await http.get("/v1/models", params={"prefix": model})).json()["items"] == []


async def test_corrupted_artifact_is_an_integrity_error(http: httpx.AsyncClient,
                                                        unique: str) -> None:
    model = f"rot-{unique}"
    v = await _register(http, model, os.urandom(2 * 1024 * 1024), {})
    stack: Stack = http.stack  # type: ignore[attr-defined]
    bus = await connect(stack.url)
    try:
        obs = await bus.js.object_store(v["artifact"]["bucket"])
        await obs.put(v["artifact"]["object_name"], os.urandom(2 * 1024 * 1024))
    finally:
        await bus.close()
    r = await http.get(f"/v1/models/{model}/versions/1/artifact")
    assert r.status_code == 422 and r.json()["code"] == "integrity_error"
