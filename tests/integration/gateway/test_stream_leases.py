"""Event streams per principal are capped across gateway replicas (issue 14, case 7): two
gateways on one real nats-server share the cap through leases in a KV bucket, a dead replica's
leases expire, and without the bucket each replica still holds its own cap."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import nats
import pytest

from services.gateway.streamleases import BUCKET, slot_key
from shared.natsserver import EmbeddedNats
from tests.integration.gateway.support import RELAXED, STORES, Gateway, running_gateway
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)
CAP = 3
KEY = "qo_streamleases01_" + "S" * 43
ENV = {**RELAXED, **STORES["kv"], "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": KEY,
       "QUANTOPS_GATEWAY_MAX_STREAMS_PER_PRINCIPAL": str(CAP),
       "QUANTOPS_GATEWAY_STREAM_LEASE_TTL_S": "2"}
FEED = "/v1/task-events"


@contextlib.asynccontextmanager
async def _replicas(server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[tuple[Gateway, ...]]:
    async with running_gateway(server.url, tmp_path / "a", **ENV) as a, \
            running_gateway(server.url, tmp_path / "b", **ENV) as b:
        yield a, b


async def _status(http: httpx.AsyncClient) -> int:
    async with http.stream("GET", FEED) as r:
        return r.status_code


async def test_the_cap_holds_across_two_replicas(
        nats_factory: Callable[..., EmbeddedNats], tmp_path: Path) -> None:
    async with _replicas(nats_factory(), tmp_path) as (a, b), \
            a.client(KEY) as on_a, b.client(KEY) as on_b, contextlib.AsyncExitStack() as held:
        streams = []
        for http in (on_a, on_b, on_a):
            r = await held.enter_async_context(http.stream("GET", FEED))
            assert r.status_code == 200
            streams.append(r)
        # Before: each replica counted only its own, so B took CAP more (2 * CAP in all).
        refused = await on_b.get(FEED)
        assert refused.status_code == 429, refused.text
        assert refused.json()["details"]["max_streams"] == CAP and refused.headers["Retry-After"]
        assert (await on_a.get(FEED)).status_code == 429
        # A stream closed on A gives its slot to B.
        await streams[0].aclose()
        await eventually(lambda: _is_ok(on_b), what="the slot given back")


async def test_a_dead_replicas_leases_expire(
        nats_factory: Callable[..., EmbeddedNats], tmp_path: Path) -> None:
    server = nats_factory()
    async with _replicas(server, tmp_path) as (a, _), a.client(KEY) as http:
        assert await _status(http) == 200  # the bucket exists from here on
        # What a replica killed with its streams open leaves behind: leases nobody renews.
        nc = await nats.connect(server.url)
        try:
            kv = await nc.jetstream().key_value(BUCKET)
            for slot in range(CAP):  # put: overwrites our own first lease if still there
                await kv.put(slot_key("admin", slot), b"dead-replica:1")
        finally:
            await nc.close()
        assert (await http.get(FEED)).status_code == 429
        # Within the lease's life (2 s here), the slots come back.
        await eventually(lambda: _is_ok(http), timeout_s=10, what="dead leases expired")


async def _idle(gw: Gateway) -> None:
    """Until the server has seen the client of the last stream leave (its slot is back)."""
    assert gw.service.app is not None
    slots = gw.service.app.state.streams
    await eventually(lambda: slots.open_count("admin") == 0, what="the stream's slot back")


async def _is_ok(http: httpx.AsyncClient) -> bool:
    return await _status(http) == 200


async def test_without_the_bucket_each_replica_keeps_its_own_cap(
        nats_factory: Callable[..., EmbeddedNats], tmp_path: Path) -> None:
    server = nats_factory()
    async with _replicas(server, tmp_path) as (a, _), a.client(KEY) as http, \
            contextlib.AsyncExitStack() as held:
        nc = await nats.connect(server.url)
        try:
            # The bucket gone (or unreachable): streams are admitted on the replica's count.
            js = nc.jetstream()
            assert await _status(http) == 200
            await _idle(a)
            await js.delete_key_value(BUCKET)
        finally:
            await nc.close()
        for _ in range(CAP):
            r = await held.enter_async_context(http.stream("GET", FEED))
            assert r.status_code == 200
        assert (await http.get(FEED)).status_code == 429
