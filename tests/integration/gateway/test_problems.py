"""Every error the gateway answers is RFC 9457 problem+json with the error code and the
correlation id: 400 401 403 404 405 413 429 503 504, with their headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from shared.bus import flush
from tests.integration.gateway.support import Gateway, make_user_key


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"https://quantops.dev/errors/{code}"
    assert body["title"] and isinstance(body["detail"], str) and isinstance(body["details"], dict)
    assert body["instance"] == r.url.path
    assert body["correlation_id"] == r.headers["x-correlation-id"]
    return body


async def test_client_errors(gateway: Gateway) -> None:
    async with gateway.client(gateway.admin_key, headers={"X-Correlation-ID": "prob-1"}) as http:
        r = await http.post("/v1/users", json={"name": "Not Valid!", "role": "root"})
        assert assert_problem(r, 400, "invalid_request")["correlation_id"] == "prob-1"
        r = await http.post("/v1/users", content=b"{not json",
                            headers={"content-type": "application/json"})
        assert_problem(r, 400, "invalid_request")
        r = await http.post("/v1/users", json={"name": "x", "role": "viewer", "extra": 1})
        assert_problem(r, 400, "invalid_request")
        assert_problem(await http.get("/v1/no-such-thing"), 404, "not_found")
        assert_problem(await http.get("/v1/users/ghost"), 404, "not_found")
        r = await http.delete("/v1/me")
        assert_problem(r, 405, "method_not_allowed")
        r = await http.post("/v1/auth/login", content=b"x" * 100_000,
                            headers={"content-type": "application/json"})
        assert_problem(r, 413, "payload_too_large")
    async with gateway.client() as http:
        r = await http.get("/v1/me")
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == 'Bearer realm="quantops"'
    async with gateway.client(gateway.keys["viewer"]) as http:
        assert_problem(await http.get("/v1/users"), 403, "forbidden")


async def test_service_unavailable_and_timeout(gateway: Gateway, unique: str) -> None:
    import nats

    silent = f"probe.silent.{unique}"

    async def never_answer(msg: Any) -> None:
        pass

    nc = await nats.connect(gateway.nats_url)
    await nc.subscribe(silent, cb=never_answer)
    await flush(nc)
    try:
        async with gateway.client(gateway.keys["viewer"]) as http:
            r = await http.get(f"/v1/probe/probe.nobody.{unique}")
            assert assert_problem(r, 503, "service_unavailable")["details"]["subject"]
            r = await http.get(f"/v1/probe/{silent}", params={"timeout_s": 0.3})
            assert_problem(r, 504, "timeout")
    finally:
        await nc.close()


async def test_rate_limits_per_principal_and_per_address(
    start_gateway: Callable[..., Any]
) -> None:
    env = {"QUANTOPS_GATEWAY_RATE_LIMIT_PER_S": "0.2", "QUANTOPS_GATEWAY_RATE_LIMIT_BURST": "4",
           "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_PER_S": "0.1",
           "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_BURST": "3"}
    async with start_gateway(**env) as gw:
        other = await make_user_key(gw, "other", "viewer")  # two of the admin's four tokens
        async with gw.client(gw.admin_key) as http:
            statuses = [(await http.get("/v1/me")).status_code for _ in range(3)]
            limited = await http.get("/v1/me")
        assert statuses == [200, 200, 429]
        body = assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1 and body["details"]["retry_after_s"] > 0
        async with gw.client(other) as http:  # another principal has its own bucket
            assert (await http.get("/v1/me")).status_code == 200
        async with gw.client() as http:  # anonymous: per address, public routes
            assert [(await http.get("/healthz")).status_code for _ in range(3)] == [200] * 3
            assert_problem(await http.get("/healthz"), 429, "rate_limited")
            # That address has spent its allowance: a wrong key is not even checked.
            r = await http.get("/v1/me", headers={"X-API-Key": "qo_0123456789abcdef_" + "a" * 43})
            assert_problem(r, 429, "rate_limited")
        async with gw.client(other) as http:  # a key already verified still works
            assert (await http.get("/v1/me")).status_code == 200
