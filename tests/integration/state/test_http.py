"""The state routes of a real gateway (in-process, uvicorn and auth included) over the
module's state replicas: ETags, If-Match / If-None-Match with 412, 304, SSE, roles."""

from __future__ import annotations

import asyncio
import json

import httpx
from litestar.types import HTTPScope, Send

from services.gateway.app import route_handlers
from services.gateway.lean import LEAN
from services.gateway.service import GatewayApp


def etag(r: httpx.Response) -> str:
    return r.headers["ETag"]


async def test_put_get_with_etags(http: httpx.AsyncClient, ns: str) -> None:
    created = await http.put(f"/v1/state/{ns}/pos/AAPL.eq", json={"value": {"qty": 1}},
                             headers={"If-None-Match": "*"})
    assert created.status_code == 201, created.text
    rev = created.json()["revision"]
    assert etag(created) == f'"{rev}"'
    got = await http.get(f"/v1/state/{ns}/pos/AAPL.eq")
    assert got.status_code == 200 and got.json()["value"] == {"qty": 1} and etag(got) == etag(
        created)
    again = await http.put(f"/v1/state/{ns}/pos/AAPL.eq", json={"value": {"qty": 2}},
                           headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert again.json()["details"]["current_revision"] == rev
    stale = await http.put(f"/v1/state/{ns}/pos/AAPL.eq", json={"value": {"qty": 3}},
                           headers={"If-Match": f'"{rev + 1000}"'})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith(
        "application/problem+json")
    ok = await http.put(f"/v1/state/{ns}/pos/AAPL.eq", json={"value": {"qty": 3}},
                        headers={"If-Match": etag(got)})
    assert ok.status_code == 200 and ok.json()["revision"] > rev
    unchanged = await http.get(f"/v1/state/{ns}/pos/AAPL.eq", headers={"If-None-Match": etag(ok)})
    assert unchanged.status_code == 304
    old = await http.get(f"/v1/state/{ns}/pos/AAPL.eq", params={"revision": rev})
    assert old.json()["value"] == {"qty": 1}


async def test_delete_list_history(http: httpx.AsyncClient, ns: str) -> None:
    for k in ("a.1", "a.2", "b"):
        assert (await http.put(f"/v1/state/{ns}/{k}", json={"value": k})).status_code == 200
    listed = await http.get(f"/v1/state/{ns}", params={"prefix": "a.", "limit": 1})
    assert [k["key"] for k in listed.json()["items"]] == ["a.1"]
    assert listed.json()["next_cursor"] == "a.1"
    put = await http.get(f"/v1/state/{ns}/b")
    bad = await http.delete(f"/v1/state/{ns}/b", headers={"If-Match": '"1"'})
    assert bad.status_code == 412
    gone = await http.delete(f"/v1/state/{ns}/b", headers={"If-Match": etag(put)})
    assert gone.status_code == 200
    assert (await http.get(f"/v1/state/{ns}/b")).status_code == 404
    history = await http.get(f"/v1/state/_history/{ns}/b")
    assert [e["operation"] for e in history.json()["entries"]] == ["delete", "put"]


async def test_errors_are_problems(http: httpx.AsyncClient, ns: str) -> None:
    bad_name = await http.put("/v1/state/bad.ns/k", json={"value": 1})
    assert bad_name.status_code == 400 and bad_name.json()["details"]["field"] == "namespace"
    extra = await http.put(f"/v1/state/{ns}/k", json={"value": 1, "surprise": True})
    assert extra.status_code == 400
    bad_etag = await http.put(f"/v1/state/{ns}/k", json={"value": 1},
                              headers={"If-Match": "yesterday"})
    assert bad_etag.status_code == 400
    cfg = await http.put(f"/v1/state/_namespaces/{ns}", json={"max_value_bytes": 10})
    assert cfg.status_code == 200 and cfg.json()["max_value_bytes"] == 10
    big = await http.put(f"/v1/state/{ns}/k", json={"value": "x" * 50})
    assert big.status_code == 413


async def test_sse_watch_streams_changes(http: httpx.AsyncClient, ns: str) -> None:
    events: list[dict[str, object]] = []
    ready = asyncio.Event()

    async def watch() -> None:
        async with http.stream("GET", f"/v1/state/_watch/{ns}", params={"prefix": "sig."}
                               ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                    if kind == "ready":  # subscribed: nothing written from now on is missed
                        ready.set()
                elif line.startswith("data:") and kind in ("put", "delete"):
                    events.append({"event": kind, **json.loads(line.split(":", 1)[1])})
                    if len(events) == 2:
                        return

    task = asyncio.create_task(watch())
    await asyncio.wait_for(ready.wait(), 5)
    await http.put(f"/v1/state/{ns}/other", json={"value": 0})
    await http.put(f"/v1/state/{ns}/sig.EURUSD", json={"value": {"side": "buy"}})
    await http.delete(f"/v1/state/{ns}/sig.EURUSD")
    await asyncio.wait_for(task, 5)
    assert [(e["event"], e["key"]) for e in events] == [("put", "sig.EURUSD"),
                                                        ("delete", "sig.EURUSD")]
    assert events[0]["value"] == {"side": "buy"}


async def test_snapshot_download_upload_restore_and_cleanup(http: httpx.AsyncClient,
                                                            ns: str) -> None:
    await http.put(f"/v1/state/{ns}/k", json={"value": "v1"})
    snap = await http.post("/v1/state/_snapshots", json={"namespace": ns})
    assert snap.status_code == 201, snap.text
    name = snap.json()["name"]
    listed = await http.get("/v1/state/_snapshots")
    assert name in [s["name"] for s in listed.json()["snapshots"]]
    file = await http.get(f"/v1/state/_snapshots/{name}")
    assert file.status_code == 200 and file.content.startswith(b'{"format":"quantops-state')
    copy = f"copy-{ns}.qsnap"
    assert (await http.put(f"/v1/state/_snapshots/{copy}", content=file.content)
            ).status_code == 201
    await http.put(f"/v1/state/{ns}/k", json={"value": "v2"})
    restored = await http.post(f"/v1/state/_snapshots/{copy}/restore", json={})
    assert restored.status_code == 200 and restored.json()["written"] == 1
    assert (await http.get(f"/v1/state/{ns}/k")).json()["value"] == "v1"
    cleaned = await http.post(f"/v1/state/_cleanup/{ns}", json={"older_than_s": 0})
    assert cleaned.json()["deleted"] == ["k"]
    usage = await http.get(f"/v1/state/_namespaces/{ns}")
    assert usage.json()["namespaces"][0]["keys"] == 0


async def test_the_lean_read_answers_as_the_route_handler_does(
        http: httpx.AsyncClient, gateway: GatewayApp, ns: str) -> None:
    """``GET /v1/state/{ns}/{key}`` without a query is answered by its lean version
    (``services.gateway.lean``); with one, by the Litestar handler. The same requests both
    ways give the same status, headers and body, and the lean version did answer."""
    assert gateway.app is not None
    handler = next(h for path, h in route_handlers(gateway.app)
                   if path == "/v1/state/{namespace:str}/{key:path}"
                   and "GET" in getattr(h, "http_methods", ()))
    taken: list[bool] = []
    lean_read = handler.opt[LEAN]

    async def counted(scope: HTTPScope, send: Send) -> bool:
        taken.append(await lean_read(scope, send))
        return taken[-1]

    put = await http.put(f"/v1/state/{ns}/pos/AAPL.eq", json={"value": {"qty": 1, "s": "ü"}})
    current = put.headers["ETag"]
    viewer = await http.post("/v1/keys", json={"label": f"v{ns}", "role": "viewer"})
    assert viewer.status_code == 201, viewer.text
    cases: list[tuple[str, dict[str, str]]] = [
        ("pos/AAPL.eq", {}),
        ("pos/AAPL.eq", {"If-None-Match": current}),
        ("pos/AAPL.eq", {"If-None-Match": f"W/{current}"}),
        ("pos/AAPL.eq", {"If-None-Match": '"1"'}),
        ("pos/AAPL.eq", {"If-None-Match": "*"}),
        ("pos/AAPL.eq", {"If-None-Match": "yesterday"}),
        ("pos/AAPL.eq", {"Authorization": f"Bearer {viewer.json()['key']}"}),
        ("pos/AAPL.eq", {"Authorization": "Bearer qo_wrong"}),
        ("missing", {}),
        ("bad key!", {}),
        ("/pos/AAPL.eq", {}),
        ("pos/", {}),
    ]
    handler.opt[LEAN] = counted
    try:
        for key, headers in cases:
            lean_answer = await http.get(f"/v1/state/{ns}/{key}", headers=headers)
            routed = await http.get(f"/v1/state/{ns}/{key}", params={"_": "1"}, headers=headers)
            assert _comparable(lean_answer) == _comparable(routed), (key, headers)
    finally:
        handler.opt[LEAN] = lean_read
    assert taken.count(True) >= 7, taken  # each request the guard let through, no query


def _comparable(r: httpx.Response) -> tuple[int, dict[str, str], object]:
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "x-correlation-id")}
    body: object = r.content
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        body = {k: v for k, v in r.json().items() if k not in ("correlation_id", "instance")}
    return r.status_code, headers, body
