"""Two replicas, one queue group, caches fed by each one's feed: a client never reads a value
older than one it has seen, whichever replica answers; strong reads go to JetStream."""

from __future__ import annotations

import asyncio

import pytest

from shared.clients.state import StateClient
from shared.errors import NotFound
from tests.integration.state.support import Stack
from tests.support import eventually


async def test_read_your_writes_across_replicas(state: StateClient, ns: str,
                                                stack: Stack) -> None:
    assert len(stack.replicas) == 2
    for i in range(300):
        put = await state.put(ns, "k", {"i": i})
        entry = await state.get(ns, "k")  # lands on either replica
        assert entry.revision >= put.revision and entry.value == {"i": i}
        if i % 50 == 0:
            await state.delete(ns, "k")
            with pytest.raises(NotFound):
                await state.get(ns, "k")


async def test_a_write_by_one_client_is_seen_by_another_after_it_sees_a_later_revision(
        state: StateClient, client_bus: object, ns: str) -> None:
    from shared.bus import Bus

    assert isinstance(client_bus, Bus)
    writer, reader = state, StateClient(client_bus)
    put = await writer.put(ns, "shared", "v1")
    reader.seen_revision = put.revision  # e.g. learnt from an event
    assert (await reader.get(ns, "shared")).value == "v1"


async def test_strong_reads_see_writes_made_behind_the_cache(state: StateClient, ns: str,
                                                             stack: Stack) -> None:
    """A raw nats-py write (no service involved): a strong read sees it at once."""
    import nats

    await state.put(ns, "raw", 1)
    nc = await nats.connect(stack.nats.url)
    try:
        kv = await nc.jetstream().key_value("quantops_state")
        await kv.put(f"{ns}.raw", b'{"by":"nats-py"}')
    finally:
        await nc.close()
    assert (await state.get(ns, "raw", strong=True)).value == {"by": "nats-py"}


async def test_concurrent_gets_from_the_cache_are_counted_as_such(state: StateClient,
                                                                  ns: str, stack: Stack
                                                                  ) -> None:
    from services.state import metrics

    put = await state.put(ns, "hot", {"x": 1})
    for app in stack.replicas:  # both replicas' caches have it, so every read is a cache read
        assert app.feed is not None and await app.feed.wait_fresh(put.revision, 5.0)
    metrics.flush()
    before = metrics.CACHE_READS.labels("cache")._value.get()
    values = await asyncio.gather(*(state.get(ns, "hot") for _ in range(100)))
    assert all(v.value == {"x": 1} for v in values)
    metrics.flush()
    assert metrics.CACHE_READS.labels("cache")._value.get() - before >= 90


async def test_the_feed_reports_its_freshness(stack: Stack, state: StateClient, ns: str
                                              ) -> None:
    put = await state.put(ns, "f", 1)
    for app in stack.replicas:
        assert app.feed is not None
        assert await app.feed.wait_fresh(put.revision, 1.0)
        assert app.feed.applied >= put.revision
        assert not app.feed.fresh(put.revision + 10_000)


async def test_a_stalled_feed_never_serves_stale_values_and_recovers(
        state: StateClient, ns: str, stack: Stack) -> None:
    """One replica's feed stops (its subscription vanishes): that replica's cache falls behind,
    so it must answer from JetStream; its watchdog then recreates the feed."""
    stalled = stack.replicas[1].feed
    assert stalled is not None and stalled._sub is not None
    resets, heartbeat_s = stalled.resets, stalled.heartbeat_s
    # Its watchdog gives up on a feed after three silent heartbeats: 1.5 s instead of the
    # default 3 s (the 30 writes and reads below take a small fraction of either).
    stalled.heartbeat_s = 0.5
    try:
        await state.put(ns, "k", {"i": -1})
        await stalled.wait_fresh(state.seen_revision, 1.0)
        await stalled._sub.unsubscribe()
        for i in range(30):  # each get lands on either replica; the stalled one is still "live"
            await state.put(ns, "k", {"i": i})
            assert (await state.get(ns, "k")).value == {"i": i}
        await eventually(
            lambda: stalled.resets > resets and stalled.fresh(state.seen_revision),
            what="the stalled feed recreated and fresh")
    finally:
        stalled.heartbeat_s = heartbeat_s
    entry = stack.replicas[1].index.lookup(ns, "k", 0)
    assert entry is not None and entry.value == b'{"i":29}'


async def test_a_gap_in_the_feed_recreates_it_from_the_last_applied_revision(
        state: StateClient, ns: str, stack: Stack) -> None:
    """A delivery whose consumer sequence skips one means a lost message: the replica stops
    answering from its cache at once and resumes from ``applied + 1`` (nothing skipped)."""
    from nats.aio.msg import Msg

    feed = stack.replicas[0].feed
    assert feed is not None
    await state.put(ns, "g", 1)
    assert await feed.wait_fresh(state.seen_revision, 1.0)
    resets, applied = feed.resets, feed.applied
    skipped = f"$JS.ACK.{feed.stream}.c.1.{applied + 2}.{feed._cseq + 2}.0.0"
    feed._on_delivery(Msg(stack.buses[0].nc, subject=feed.prefix + f"{ns}.x",
                          reply=skipped, data=b"1"))
    assert not feed.fresh(applied)  # the cache stopped answering
    assert stack.replicas[0].index.lookup(ns, "x", 0) is None  # and nothing was applied
    put = await state.put(ns, "g", 2)
    assert await feed.wait_fresh(put.revision, 5.0) and feed.resets == resets + 1
    entry = stack.replicas[0].index.lookup(ns, "g", 0)
    assert entry is not None and entry.value == b"2"
