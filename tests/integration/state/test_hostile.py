"""Hostile input to the state service (issue 14): out-of-range numbers, idempotent retries,
deep and oversized bodies, loose types. Each case first shown as what used to go wrong."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from shared.bus import Bus
from shared.clients.state import StateClient
from shared.contracts.bounds import MAX_SAFE_INT, MAX_SCHEMA_VERSION
from shared.contracts.state import PutReply, PutRequest
from shared.errors import InvalidRequest
from shared.subjects import StateSubject
from tests.support import eventually

# --- case 1: schema_version bounds --------------------------------------------------------

@pytest.mark.parametrize("version", [2**53 - 1, 100_000, 2_000_000, MAX_SCHEMA_VERSION + 1])
async def test_huge_schema_version_is_refused_at_once(http: httpx.AsyncClient, ns: str,
                                                      version: int) -> None:
    r = await http.put(f"/v1/state/_namespaces/{ns}", json={"schema_version": version})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(r.content) < 4096  # used to list every missing migration (1.28 MB)


async def test_declarable_version_lists_few_missing_steps(http: httpx.AsyncClient,
                                                          ns: str) -> None:
    r = await http.put(f"/v1/state/_namespaces/{ns}",
                       json={"schema_version": MAX_SCHEMA_VERSION})
    assert r.status_code == 400, r.text
    details = r.json()["details"]
    assert details["missing_count"] == MAX_SCHEMA_VERSION - 1
    assert len(details["missing_from_versions"]) == 20 and len(r.content) < 4096


async def test_huge_schema_version_over_nats(client_bus: Bus, ns: str) -> None:
    body = msgspec.json.encode({"namespace": ns, "key": "k", "value": 1,
                                "schema_version": 9007199254740991})
    with pytest.raises(InvalidRequest, match="schema_version"):
        await client_bus.request_raw(StateSubject.PUT, body)
    body = msgspec.json.encode({"namespace": ns, "config": {"schema_version": 2**53 - 1}})
    with pytest.raises(InvalidRequest, match="schema_version"):
        await client_bus.request_raw(StateSubject.CONFIGURE, body)


# --- case 2: If-Match beyond any revision -------------------------------------------------

@pytest.mark.parametrize("etag", ['"18446744073709551616"', '"18446744073709551615"',
                                  f'"{MAX_SAFE_INT + 1}"', '"9' * 40 + '"'])
async def test_if_match_out_of_range_never_creates(http: httpx.AsyncClient, ns: str,
                                                   etag: str) -> None:
    r = await http.put(f"/v1/state/{ns}/never", json={"value": 1}, headers={"If-Match": etag})
    assert r.status_code == 400, r.text
    assert (await http.get(f"/v1/state/{ns}/never")).status_code == 404
    r = await http.delete(f"/v1/state/{ns}/never", headers={"If-Match": etag})
    assert r.status_code == 400, r.text


async def test_expected_revision_out_of_range_over_nats(client_bus: Bus, ns: str) -> None:
    body = msgspec.json.encode({"namespace": ns, "key": "k", "value": 1,
                                "expected_revision": 2**64})
    with pytest.raises(InvalidRequest):
        await client_bus.request_raw(StateSubject.PUT, body)


async def test_if_match_of_a_missing_key_still_compares(http: httpx.AsyncClient,
                                                        ns: str) -> None:
    r = await http.put(f"/v1/state/{ns}/never", json={"value": 1},
                       headers={"If-Match": f'"{MAX_SAFE_INT}"'})
    assert r.status_code == 412, r.text
    assert (await http.get(f"/v1/state/{ns}/never")).status_code == 404


# --- case 11: a retried write applies once ------------------------------------------------

async def test_plain_retry_applies_twice_request_id_once(state: StateClient, ns: str) -> None:
    await state.put(ns, "plain", {"n": 1})
    await state.put(ns, "plain", {"n": 1})  # the attack: a blind retry is a second write
    assert len((await state.history(ns, "plain")).entries) == 2

    first = await state.put(ns, "once", {"n": 1}, request_id="req-1")
    again = await state.put(ns, "once", {"n": 1}, request_id="req-1")
    assert again.revision == first.revision
    assert len((await state.history(ns, "once")).entries) == 1
    other = await state.put(ns, "once", {"n": 2}, request_id="req-2")
    assert other.revision > first.revision


async def test_request_id_dedupes_even_a_compare_and_set(client_bus: Bus, ns: str) -> None:
    """A replayed create must answer its revision, not a conflict with itself."""
    req = PutRequest(namespace=ns, key="cas", value=msgspec.Raw(b"1"), expected_revision=0,
                     request_id="create-1")
    first = await client_bus.request(StateSubject.PUT, req, PutReply)
    second = await client_bus.request(StateSubject.PUT, req, PutReply)
    assert second.revision == first.revision


async def test_request_id_is_per_key(state: StateClient, ns: str) -> None:
    a = await state.put(ns, "a", 1, request_id="same")
    b = await state.put(ns, "b", 2, request_id="same")
    assert b.revision != a.revision and (await state.get(ns, "b")).value == 2


async def test_idempotency_key_over_http(http: httpx.AsyncClient, ns: str) -> None:
    headers = {"Idempotency-Key": "retry-7"}
    first = await http.put(f"/v1/state/{ns}/k", json={"value": 1}, headers=headers)
    second = await http.put(f"/v1/state/{ns}/k", json={"value": 1}, headers=headers)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json()["revision"] == second.json()["revision"]
    hist = await http.get(f"/v1/state/_history/{ns}/k")
    assert len(hist.json()["entries"]) == 1
    bad = await http.put(f"/v1/state/{ns}/k", json={"value": 1},
                         headers={"Idempotency-Key": "x" * 200})
    assert bad.status_code == 400


async def test_request_id_bounded_over_nats(client_bus: Bus, ns: str) -> None:
    body = msgspec.json.encode({"namespace": ns, "key": "k", "value": 1,
                                "request_id": "x" * 1000})
    with pytest.raises(InvalidRequest):
        await client_bus.request_raw(StateSubject.PUT, body)


# --- cases 3, 5, 10: depth, body size, strict types ----------------------------------------

async def test_deep_json_is_a_400_on_every_state_route(http: httpx.AsyncClient,
                                                       ns: str) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    for method, path in [("PUT", f"/v1/state/{ns}/k"), ("PUT", f"/v1/state/_namespaces/{ns}"),
                         ("POST", f"/v1/state/_cleanup/{ns}"), ("POST", "/v1/state/_snapshots")]:
        r = await http.request(method, path, content=deep,
                               headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (method, path, r.status_code, r.text[:200])
        assert r.json()["details"]["reason"] == "too_deep"
    value = b'{"value": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    r = await http.put(f"/v1/state/{ns}/k", content=value,
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 400


async def test_deep_json_over_nats(client_bus: Bus, ns: str) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    body = b'{"namespace": "%s", "key": "k", "value": %s}' % (ns.encode(), deep)
    with pytest.raises(InvalidRequest, match="levels deep"):
        await client_bus.request_raw(StateSubject.PUT, body)


async def test_state_bodies_are_sized_to_the_route(http: httpx.AsyncClient, ns: str) -> None:
    big = b'{"older_than_s": 1, "pad": "' + b"x" * (1 << 20) + b'"}'
    r = await http.post(f"/v1/state/_cleanup/{ns}", content=big,
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text[:200]
    r = await http.put(f"/v1/state/{ns}/k", content=b'{"value": "' + b"x" * (9 << 20) + b'"}',
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text[:200]


async def test_dry_run_zero_is_not_false(http: httpx.AsyncClient, ns: str) -> None:
    await http.put(f"/v1/state/{ns}/keep", json={"value": 1})
    r = await http.post(f"/v1/state/_cleanup/{ns}", json={"older_than_s": 0, "dry_run": 0})
    assert r.status_code == 400, r.text
    assert (await http.get(f"/v1/state/{ns}/keep")).status_code == 200
    r = await http.put(f"/v1/state/{ns}/k", json={"value": 1, "ttl_s": "5"})
    assert r.status_code == 400, r.text


# --- case 7: event streams per principal ---------------------------------------------------

async def test_event_streams_per_principal_are_capped(http: httpx.AsyncClient, ns: str) -> None:
    """Eight streams at once (the default cap); the ninth is a 429 before it starts, and a
    closed stream gives its slot back."""
    import contextlib

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(8):
            r = await stack.enter_async_context(http.stream("GET", f"/v1/state/_watch/{ns}"))
            assert r.status_code == 200
        refused = await http.get(f"/v1/state/_watch/{ns}")
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] and refused.json()["details"]["max_streams"] == 8
    # The slots come back once the server has seen the clients leave.
    async def not_refused() -> int | None:
        status = await _stream_status(http, f"/v1/state/_watch/{ns}")
        return None if status == 429 else status

    again = await eventually(not_refused, timeout_s=10, interval_s=0.05,
                             what="a stream slot back")
    assert again == 200


async def _stream_status(http: httpx.AsyncClient, path: str) -> int:
    async with http.stream("GET", path) as r:
        return r.status_code
