"""The HTTP client against a scripted transport (httpx.MockTransport): request building,
error mapping, pagination, token refresh, streamed bodies, event streams, integrity checks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared import errors
from shared.clients.http import AsyncClient, Client
from shared.clients.http._problems import error_from_response
from shared.clients.http._sse import SseParser
from shared.contracts.registry import VersionSpec

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: str) -> Client:
    return Client("http://gw", transport=httpx.MockTransport(handler), **kwargs)


def problem(status: int, code: str, detail: str = "no", **details: object) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/problem+json",
                                           "x-correlation-id": "cid-1"},
                          json={"type": "t", "title": code, "status": status, "detail": detail,
                                "code": code, "details": details, "correlation_id": "cid-1"})


def test_problem_json_becomes_the_services_exception() -> None:
    err = error_from_response(412, httpx.Headers(), problem(412, "revision_conflict", "stale",
                                                            current=7).content)
    assert isinstance(err, errors.RevisionConflict) and err.message == "stale"
    assert err.details == {"current": 7, "http_status": 412, "correlation_id": "cid-1"}
    odd = error_from_response(405, httpx.Headers({"retry-after": "3"}),
                              problem(405, "method_not_allowed").content)
    assert isinstance(odd, errors.InvalidRequest)
    assert odd.details["remote_code"] == "method_not_allowed"
    assert odd.details["retry_after_s"] == 3.0
    proxy = error_from_response(502, httpx.Headers(), b"<html>bad gateway</html>")
    assert isinstance(proxy, errors.ServiceUnavailable) and "bad gateway" in proxy.message


def test_requests_carry_the_key_and_preconditions() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"namespace": "n", "key": "a/b c", "revision": 3})

    with client(handler, api_key="qo_k") as c:
        assert c.state.put("n", "a/b c", {"x": 1}, expected_revision=2).revision == 3
        c.state.put("n", "a/b c", [1], expected_revision=0)
    first, second = seen
    assert first.url.raw_path == b"/v1/state/n/a/b%20c"
    assert first.headers["authorization"] == "Bearer qo_k"
    assert first.headers["if-match"] == '"2"' and json.loads(first.content) == {"value": {"x": 1}}
    assert second.headers["if-none-match"] == "*"


def test_listings_follow_the_cursor() -> None:
    pages = {"": (["a", "b"], "c1"), "c1": (["c"], "")}

    def handler(request: httpx.Request) -> httpx.Response:
        names, nxt = pages[request.url.params.get("cursor", "")]
        items = [{"name": n, "versions": 1, "created_at": "2024-01-01T00:00:00Z",
                  "updated_at": "2024-01-01T00:00:00Z"} for n in names]
        return httpx.Response(200, json={"items": items, "next_cursor": nxt})

    with client(handler) as c:
        assert [m.name for m in c.models.iter()] == ["a", "b", "c"]


def test_an_expired_access_token_is_refreshed_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.url.path} {request.headers.get('authorization')}")
        if request.url.path == "/v1/auth/refresh":
            return httpx.Response(200, json={"access_token": "new", "expires_in": 900,
                                             "refresh_token": "r2", "refresh_expires_in": 9})
        if request.headers["authorization"] == "Bearer old":
            return problem(401, "unauthenticated")
        return httpx.Response(200, json={"name": "a", "role": "admin", "via": "jwt"})

    with client(handler, token="old", refresh_token="r1") as c:
        assert c.auth.me().name == "a"
        assert c.credentials.refresh_token == "r2"
    assert calls == ["/v1/me Bearer old", "/v1/auth/refresh Bearer old", "/v1/me Bearer new"]


def test_unreachable_gateway_is_service_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(handler) as c, pytest.raises(errors.ServiceUnavailable):
        c.health.live()


def _version(name: str, size: int) -> dict[str, object]:
    return {"model": name, "version": 1, "created_at": "2024-01-01T00:00:00Z",
            "artifact": {"bucket": "b", "object_name": "o", "sha256": "0" * 64,
                         "size_bytes": size, "format": "json"}}


def test_upload_streams_with_progress_and_aborts_on_failure(tmp_path: Path) -> None:
    data = b"x" * 2_500_000
    (tmp_path / "m.bin").write_bytes(data)
    seen: list[tuple[str, str, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen.append((request.method, request.url.path, len(body)))
        if request.method == "POST":
            assert json.loads(body)["size_bytes"] == len(data)
            return httpx.Response(201, json={"upload_id": "u1", "model": "m"})
        if request.method == "PUT":
            assert request.headers["content-length"] == str(len(data))
            return problem(413, "payload_too_large") if len(seen) > 3 else \
                httpx.Response(201, json=_version("m", len(body)))
        return httpx.Response(204)

    progress: list[tuple[int, int | None]] = []
    with client(handler) as c:
        info = c.models.upload("m", tmp_path / "m.bin", spec=VersionSpec(format="json"),
                               progress=lambda d, t: progress.append((d, t)))
        assert info.artifact.size_bytes == len(data)
        with pytest.raises(errors.PayloadTooLarge):
            c.models.upload("m", data)
    assert progress[0] == (0, len(data)) and progress[-1] == (len(data), len(data))
    assert len(progress) == 4  # 0, then three 1 MiB chunks
    assert seen[-1] == ("DELETE", "/v1/models/m/uploads/u1", 0)  # the failed upload aborted


def test_download_checks_the_digest_and_leaves_nothing_when_wrong(tmp_path: Path) -> None:
    data = b"model bytes" * 1000
    good = hashlib.sha256(data).hexdigest()

    def handler(request: httpx.Request) -> httpx.Response:
        etag = good if "/versions/1/" in request.url.path else "f" * 64
        return httpx.Response(200, content=data, headers={"etag": f'"{etag}"'})

    with client(handler) as c:
        got = c.models.download("m", 1, tmp_path / "ok.bin")
        assert got.sha256 == good and (tmp_path / "ok.bin").read_bytes() == data
        with pytest.raises(errors.IntegrityError):
            c.models.download("m", 2, tmp_path / "bad.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.bin"]


SSE = (b": keep-alive\n\nevent: running\ndata: {\"id\": \"t1\", \"type\": \"sleep\", "
       b"\"status\": \"running\"}\nid: t1:1\n\n"
       b"event: succeeded\ndata: {\"id\": \"t1\", \"type\": \"sleep\", \"status\": \"succeeded\"}"
       b"\n\n")


def test_event_feeds_and_waits() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=SSE, headers={"content-type": "text/event-stream"})

    with client(handler) as c:
        assert [r.status for r in c.tasks.events("t1")] == ["running", "succeeded"]
        assert c.tasks.wait("t1", timeout_s=5).status == "succeeded"


async def test_async_client_has_the_same_surface() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=SSE)
        return problem(404, "not_found", "no task t9")

    async with AsyncClient("http://gw", transport=httpx.MockTransport(handler)) as c:
        assert (await c.tasks.wait("t1", timeout_s=5)).status == "succeeded"
        with pytest.raises(errors.NotFound) as e:
            await c.tasks.get("t9")
    assert e.value.details["correlation_id"] == "cid-1"


def test_on_ready_is_called_at_the_ready_event_before_any_item() -> None:
    # Each feed's ready event as its route sends it: tasks' with no data, the watch's with
    # the namespace (both are skipped as items).
    feeds = {"/v1/task-events": b"event: ready\ndata: \n\n" + SSE,
             "/v1/state/_watch/n": b"event: ready\ndata: n\n\nevent: put\ndata: {\"namespace\": "
                                   b"\"n\", \"key\": \"k\", \"revision\": 4, \"operation\": "
                                   b"\"put\"}\nid: 4\n\n"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=feeds[request.url.path])

    order: list[str] = []
    with client(handler) as c:
        for r in c.tasks.all_events(on_ready=lambda: order.append("ready")):
            order.append(r.status)
        for change in c.state.watch("n", on_ready=lambda: order.append("live")):
            order.append(change.key)
        assert [r.status for r in c.tasks.all_events()] == ["running", "succeeded"]
    assert order == ["ready", "running", "succeeded", "live", "k"]


async def test_async_on_ready_is_called_before_any_item() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"event: ready\ndata: \n\n" + SSE)

    order: list[str] = []
    async with AsyncClient("http://gw", transport=httpx.MockTransport(handler)) as c:
        async for r in c.tasks.events("t1", on_ready=lambda: order.append("ready")):
            order.append(r.status)
    assert order == ["ready", "running", "succeeded"]


def test_sse_parser_follows_the_format() -> None:
    parser = SseParser()
    lines = [": comment", "event: put", "data: {\"a\":", "data: 1}", "id: 7", "", "data: x",
             "retry: 10", ""]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert [(e.event, e.data, e.id) for e in events] == [("put", '{"a":\n1}', "7"),
                                                          ("message", "x", "7")]
