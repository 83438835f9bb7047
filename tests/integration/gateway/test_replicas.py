"""Gateway replicas sharing the KV auth store, as the Helm chart runs them: two real
``quantops serve gateway`` processes on one nats-server, each with its own data dir, started at
once with the chart's shared signing secret and bootstrap key. What one replica is told, the
other knows within the documented bound; races have one winner; a restart loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.natsserver import EmbeddedNats, free_port
from shared.settings import SettingsError
from tests.integration.gateway.support import RELAXED, STORES, running_gateway
from tests.support import ServiceProcess, eventually

pytestmark = pytest.mark.timeout(60)
#: docs/gateway.md: a change made through one replica applies on the others within this.
BOUND_S = 1.0
BOOTSTRAP_KEY = "qo_replicas0test01_" + "R" * 43
ENV = {**RELAXED, **STORES["kv"], "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY}


def _client(url: str, key: str = BOOTSTRAP_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=10,
                             headers={"Authorization": f"Bearer {key}"} if key else {})


async def _until(call: Callable[[], Any], want: Callable[[httpx.Response], bool],
                 timeout_s: float, *, what: str) -> float:
    """Seconds until the response of ``call()`` is what we ``want``; fails after the bound."""
    async def wanted() -> bool:
        return want(await call())

    start = time.monotonic()
    await eventually(wanted, timeout_s=timeout_s, interval_s=0.01, what=what)
    return time.monotonic() - start


async def _up(url: str, proc: ServiceProcess) -> None:
    async with _client(url) as http:
        async def answering() -> bool:
            assert proc.alive(), proc.log()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/v1/me")).status_code == 200
            return False

        try:
            await eventually(answering, timeout_s=30, interval_s=0.1, what="the gateway up")
        except TimeoutError:
            raise AssertionError(proc.log()[-3000:]) from None


async def _key_of(url: str, user: str) -> tuple[str, str]:
    async with _client(url) as http:
        r = await http.post("/v1/keys", json={"user": user, "label": "replica-test"})
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["info"]["id"]


async def _me(url: str, key: str) -> httpx.Response:
    async with _client(url, key) as http:
        return await http.get("/v1/me")


async def test_two_replicas_share_users_keys_sessions_and_revocations(
    spawn: Callable[..., ServiceProcess], nats_factory: Callable[..., EmbeddedNats],
    tmp_path: Path,
) -> None:
    server = nats_factory()
    ports = [free_port(), free_port()]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)

    def start(i: int) -> ServiceProcess:
        return spawn("gateway", server.url, data_dir=str(tmp_path / f"replica-{i}"),
                     QUANTOPS_GATEWAY_PORT=str(ports[i]), **ENV)

    procs = [start(0), start(1)]  # at once: both race to create the first admin
    await asyncio.gather(_up(a, procs[0]), _up(b, procs[1]))
    async with _client(a) as http_a, _client(b) as http_b:
        assert [u["name"] for u in (await http_b.get("/v1/users")).json()["items"]] == ["admin"]

        # A user and a key made through A work through B.
        assert (await http_a.post("/v1/users", json={"name": "rita", "role": "viewer",
                                                     "password": "rita's long password"})
                ).status_code == 201
        key, key_id = await _key_of(a, "rita")
        waits = {"key created": await _until(lambda: _me(b, key),
                                             lambda r: r.status_code == 200, BOUND_S,
                                             what="the new key valid through b")}

        # The same name created through both at once: one 201, one 409.
        made = await asyncio.gather(*(h.post("/v1/users", json={"name": "dup", "role": "viewer"})
                                      for h in (http_a, http_b)))
        assert sorted(r.status_code for r in made) == [201, 409], [r.text for r in made]

        # A role change through A applies through B.
        assert (await http_a.patch("/v1/users/rita", json={"role": "operator"})
                ).status_code == 200
        waits["role changed"] = await _until(lambda: _me(b, key),
                                             lambda r: r.json().get("role") == "operator",
                                             BOUND_S, what="the new role through b")

        # Sessions: log in through A, refresh through B, replay through A revokes them all.
        login = (await http_b.post("/v1/auth/login", json={
            "username": "rita", "password": "rita's long password"})).json()
        refreshed = (await http_b.post("/v1/auth/refresh", json={
            "refresh_token": login["refresh_token"]})).json()
        assert (await _me(a, refreshed["access_token"])).status_code == 200
        replay = await http_a.post("/v1/auth/refresh",
                                   json={"refresh_token": login["refresh_token"]})
        assert replay.status_code == 401
        waits["session revoked"] = await _until(lambda: _me(b, refreshed["access_token"]),
                                                lambda r: r.status_code == 401, BOUND_S,
                                                what="the sessions revoked through b")

        # A key revoked through A is refused through B (B had it cached).
        assert (await _me(b, key)).status_code == 200
        assert (await http_a.delete(f"/v1/keys/{key_id}")).status_code == 204
        waits["key revoked"] = await _until(lambda: _me(b, key),
                                            lambda r: r.status_code == 401, BOUND_S,
                                            what="the key revoked through b")
        later, _ = await _key_of(a, "rita")

    # A restarted replica keeps everything: it reads the bucket, not its (new) data dir.
    procs[1].stop()
    procs[1] = spawn("gateway", server.url, data_dir=str(tmp_path / "replica-1-new"),
                     QUANTOPS_GATEWAY_PORT=str(ports[1]), **ENV)
    await _up(b, procs[1])
    assert (await _me(b, later)).json()["role"] == "operator"
    assert (await _me(b, key)).status_code == 401
    async with _client(b) as http_b:
        names = [u["name"] for u in (await http_b.get("/v1/users")).json()["items"]]
    assert names == ["admin", "dup", "rita"]
    assert all(p.alive() for p in procs)
    assert max(waits.values()) < BOUND_S, waits
    print("propagation through the other replica, seconds:", waits)


async def test_a_replica_that_cannot_vouch_for_its_view_refuses_credentials(
    nats_factory: Callable[..., EmbeddedNats], tmp_path: Path,
) -> None:
    server = nats_factory()
    async with running_gateway(server.url, tmp_path / "data", **ENV,
                               QUANTOPS_GATEWAY_AUTH_MAX_STALENESS_S="1") as gw:
        assert (await _me(gw.url, BOOTSTRAP_KEY)).status_code == 200
        server.stop()
        # Refused once its view is older than 1 s: by 1.3 s after the stop at the latest.
        await _until(lambda: _me(gw.url, BOOTSTRAP_KEY), lambda r: r.status_code != 200, 1.3,
                     what="credentials refused")
        refused = await _me(gw.url, BOOTSTRAP_KEY)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "service_unavailable"
        server.start(log_file=server.data_dir / "nats-server.log")
        await _until(lambda: _me(gw.url, BOOTSTRAP_KEY), lambda r: r.status_code == 200, 5.0,
                     what="credentials accepted again")


async def test_kv_store_needs_a_shared_signing_secret(
    nats_factory: Callable[..., EmbeddedNats], tmp_path: Path
) -> None:
    env = {k: v for k, v in ENV.items() if k != "QUANTOPS_GATEWAY_JWT_SECRET"}
    with pytest.raises(SettingsError, match="QUANTOPS_GATEWAY_JWT_SECRET"):
        async with running_gateway(nats_factory().url, tmp_path / "d", **env):
            pass
