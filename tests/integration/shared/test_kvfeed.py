"""``shared.kvfeed`` against a real nats-server: the latest value of every key, then every
change in order; revision waiters; markers seen as removals; and a consumer the server lost is
noticed by the freshness check and recreated from the first revision not yet applied."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS

from shared.kvfeed import KvEntry, KvFeed
from shared.natsserver import EmbeddedNats
from tests.support import eventually


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


async def _feed(nc: NATS, bucket: str, seen: dict[str, bytes | None]) -> KvFeed[KvEntry]:
    def apply(e: KvEntry) -> None:
        seen[e.key] = None if e.removed else e.data

    feed = KvFeed(nc, f"KV_{bucket}", f"$KV.{bucket}.", apply, entry=KvEntry,
                  heartbeat_s=0.5, check_interval_s=0.1)
    await feed.start()
    return feed


async def test_starts_from_the_latest_values_then_follows_in_order(nc: NATS, unique: str
                                                                   ) -> None:
    kv = await nc.jetstream().create_key_value(bucket=f"f{unique}", history=5)
    await kv.put("a", b"1")
    await kv.put("a", b"2")
    await kv.put("b", b"x")
    seen: dict[str, bytes | None] = {}
    feed = await _feed(nc, f"f{unique}", seen)
    try:
        assert await feed.wait_ready(5.0)
        assert seen == {"a": b"2", "b": b"x"} and feed.applied == 3
        revision = await kv.put("c", b"y")
        await kv.delete("b")
        assert await feed.wait_applied(revision, 5.0)
        await eventually(lambda: seen.get("b", b"") is None, what="the delete marker applied")
        assert seen["c"] == b"y"
        assert feed.fresh(revision) and not feed.fresh(revision + 100)
        await eventually(lambda: feed.staleness_s() < 0.5, what="a confirmed sync")
    finally:
        await feed.stop()


async def test_a_consumer_the_server_lost_is_recreated_without_missing_a_change(
        nc: NATS, unique: str) -> None:
    bucket = f"g{unique}"
    kv = await nc.jetstream().create_key_value(bucket=bucket, history=1)
    await kv.put("k", b"0")
    seen: dict[str, bytes | None] = {}
    feed = await _feed(nc, bucket, seen)
    try:
        assert await feed.wait_ready(5.0)
        lost = feed._consumer
        # What a restarted server or a new stream leader looks like to the feed: the consumer
        # is gone, and changes keep being written meanwhile.
        reply = await nc.request(f"$JS.API.CONSUMER.DELETE.KV_{bucket}.{lost}", b"")
        assert json.loads(reply.data).get("success") is True
        last = 0
        for i in range(1, 20):
            last = await kv.put("k", str(i).encode())
        await eventually(lambda: feed.resets >= 1 and feed._consumer not in ("", lost),
                         what="the feed recreated")
        assert await feed.wait_applied(last, 5.0)
        assert seen["k"] == b"19"
    finally:
        await feed.stop()
