"""Throttling that a crowd behind one address cannot turn against itself (issue 14, case 8):
failed attempts count per API key id as well as per address, ``X-Forwarded-For`` is believed
from trusted proxies only, argon2 waits are bounded, and each user's keys are capped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.gateway.support import make_user_key

#: Three failures per address, no refill during the test; every uncached key costs argon2.
STRICT = {"QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_PER_S": "0.001",
          "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_BURST": "3",
          "QUANTOPS_GATEWAY_API_KEY_CACHE_TTL_S": "0"}
WRONG = "qo_0123456789abcdef_" + "x" * 43


async def _spend_failures(http: httpx.AsyncClient, headers: dict[str, str] | None = None
                          ) -> list[int]:
    statuses = []
    for _ in range(6):
        r = await http.get("/v1/me", headers={"Authorization": f"Bearer {WRONG}",
                                              **(headers or {})})
        statuses.append(r.status_code)
    return statuses


async def test_one_address_failing_does_not_lock_out_valid_keys(
        start_gateway: Callable[..., Any]) -> None:
    async with start_gateway(**STRICT) as gw:
        victim = await make_user_key(gw, "victim", "viewer")
        async with gw.client() as http:
            statuses = await _spend_failures(http)
            assert statuses[:3] == [401] * 3 and statuses[-1] == 429  # the address is spent
            # Before: 429 here too, an uncached valid key refused for sharing the address.
            ok = await http.get("/v1/me", headers={"Authorization": f"Bearer {victim}"})
            assert ok.status_code == 200, ok.text
            # Guessing the victim's own key id from the spent address is still throttled.
            key_id = victim.split("_")[1]
            guess = f"qo_{key_id}_" + "y" * 43
            for _ in range(25):
                r = await http.get("/v1/me", headers={"Authorization": f"Bearer {guess}"})
                assert r.status_code == 429


async def test_forwarded_for_is_believed_from_trusted_proxies_only(
        start_gateway: Callable[..., Any]) -> None:
    trusted = start_gateway(QUANTOPS_GATEWAY_TRUSTED_PROXIES="127.0.0.0/8", **STRICT)
    async with trusted as gw, gw.client() as http:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        assert (await _spend_failures(http, attacker))[-1] == 429
        # Another client behind the same proxy has its own budget.
        other = await http.get("/v1/me", headers={"Authorization": f"Bearer {WRONG}",
                                                  "X-Forwarded-For": "198.51.100.7"})
        assert other.status_code == 401
        # A client cannot pick its address by writing the header itself: the proxy's
        # appended entry (rightmost untrusted) is the one believed.
        spoofed = await http.get("/v1/me", headers={
            "Authorization": f"Bearer {WRONG}",
            "X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
        assert spoofed.status_code == 429
    async with start_gateway(**STRICT) as gw, gw.client() as http:
        # Without trusted proxies the header is nobody's word: one budget for the peer.
        await _spend_failures(http, {"X-Forwarded-For": "203.0.113.9"})
        r = await http.get("/v1/me", headers={"Authorization": f"Bearer {WRONG}",
                                              "X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429


async def test_api_keys_per_user_are_capped(start_gateway: Callable[..., Any]) -> None:
    gateway = start_gateway(QUANTOPS_GATEWAY_MAX_KEYS_PER_USER="3")
    async with gateway as gw, gw.client(gw.admin_key) as http:
        assert (await http.post("/v1/users", json={"name": "many", "role": "viewer"})
                ).status_code == 201
        for n in range(3):
            r = await http.post("/v1/keys", json={"user": "many", "label": f"k{n}"})
            assert r.status_code == 201, r.text
        r = await http.post("/v1/keys", json={"user": "many", "label": "one too many"})
        assert r.status_code == 409 and r.json()["details"]["max_keys"] == 3
        key_id = (await http.get("/v1/keys", params={"user": "many"})).json()["items"][0]["id"]
        assert (await http.delete(f"/v1/keys/{key_id}")).status_code in (200, 204)
        r = await http.post("/v1/keys", json={"user": "many", "label": "after revoking"})
        assert r.status_code == 201, r.text
