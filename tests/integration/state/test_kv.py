"""Keys through the service: revisions, compare-and-set, get at revision, delete tombstones,
listing, history, TTL, limits, compression, names."""

from __future__ import annotations

import asyncio

import msgspec
import nats
import pytest

from shared.clients.state import StateClient
from shared.contracts.state import NamespaceConfig, PutRequest
from shared.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RevisionConflict,
)
from shared.subjects import StateSubject
from tests.integration.state.support import Stack
from tests.support import eventually


async def test_every_write_returns_a_growing_revision(state: StateClient, ns: str) -> None:
    first = await state.put(ns, "pos.AAPL", {"qty": 10})
    second = await state.put(ns, "pos.AAPL", {"qty": 11})
    assert 0 < first.revision < second.revision
    entry = await state.get(ns, "pos.AAPL")
    assert (entry.value, entry.revision) == ({"qty": 11}, second.revision)


async def test_compare_and_set(state: StateClient, ns: str) -> None:
    created = await state.put(ns, "k", {"n": 0}, expected_revision=0)
    with pytest.raises(RevisionConflict) as e:
        await state.put(ns, "k", {"n": 99}, expected_revision=0)
    assert e.value.details["current_revision"] == created.revision
    updated = await state.put(ns, "k", {"n": 1}, expected_revision=created.revision)
    with pytest.raises(RevisionConflict) as e:
        await state.put(ns, "k", {"n": 99}, expected_revision=created.revision)
    assert e.value.details["current_revision"] == updated.revision
    # Nothing was written by the failed attempts.
    assert (await state.get(ns, "k", strong=True)).value == {"n": 1}


async def test_get_at_a_revision_and_history_with_tombstone(state: StateClient, ns: str) -> None:
    revs = [(await state.put(ns, "h", {"v": i})).revision for i in range(3)]
    gone = await state.delete(ns, "h")
    assert (await state.get(ns, "h", revision=revs[1])).value == {"v": 1}
    with pytest.raises(NotFound):
        await state.get(ns, "h")
    with pytest.raises(NotFound):
        await state.get(ns, "h", revision=gone.revision)  # a tombstone is no value
    history = await state.history(ns, "h", limit=3)
    assert [(e.revision, e.operation) for e in history.entries] == [
        (gone.revision, "delete"), (revs[2], "put"), (revs[1], "put")]
    assert msgspec.json.decode(history.entries[1].value) == {"v": 2}
    assert bytes(history.entries[0].value) == b"null"


async def test_a_revision_of_another_key_is_not_found(state: StateClient, ns: str) -> None:
    other = await state.put(ns, "other", 1)
    await state.put(ns, "mine", 2)
    with pytest.raises(NotFound):
        await state.get(ns, "mine", revision=other.revision)


async def test_create_after_delete_with_expected_zero(state: StateClient, ns: str) -> None:
    await state.put(ns, "again", "first")
    await state.delete(ns, "again")
    with pytest.raises(RevisionConflict) as e:
        await state.put(ns, "again", "x", expected_revision=999_999)
    assert e.value.details["current_revision"] == 0  # deleted: does not exist
    await state.put(ns, "again", "second", expected_revision=0)
    assert (await state.get(ns, "again")).value == "second"


async def test_delete_compare_and_set_and_missing_keys(state: StateClient, ns: str) -> None:
    put = await state.put(ns, "d", 1)
    with pytest.raises(RevisionConflict):
        await state.delete(ns, "d", expected_revision=put.revision - 1 or 1)
    await state.delete(ns, "d", expected_revision=put.revision)
    with pytest.raises(NotFound):
        await state.delete(ns, "d")
    with pytest.raises(NotFound):
        await state.get(ns, "never")


async def test_list_with_prefix_and_pages(state: StateClient, ns: str) -> None:
    for k in ["bars.1m.AAPL", "bars.1m.MSFT", "bars.1d.AAPL", "pos.AAPL", "bars.1m.IBM"]:
        await state.put(ns, k, {"k": k})
    await state.delete(ns, "bars.1m.MSFT")
    for strong in (False, True):
        page = await state.list_keys(ns, prefix="bars.1m", limit=1, strong=strong)
        assert [k.key for k in page.items] == ["bars.1m.AAPL"] and page.next_cursor
        rest = await state.list_keys(ns, prefix="bars.1m", cursor=page.next_cursor, strong=strong)
        assert [k.key for k in rest.items] == ["bars.1m.IBM"] and not rest.next_cursor
    every = [k.key async for k in state.keys(ns)]
    assert every == ["bars.1d.AAPL", "bars.1m.AAPL", "bars.1m.IBM", "pos.AAPL"]


@pytest.mark.parametrize(("namespace", "key"), [("bad.ns", "k"), ("_ns", "k"), ("ns", "a..b"),
                                                ("ns", "a*"), ("", "k"), ("ns", "")])
async def test_bad_names_get_a_clear_error(state: StateClient, namespace: str, key: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        await state.put(namespace, key, 1)
    assert e.value.details["field"] in ("namespace", "key")


async def test_ttl_key_disappears_as_if_deleted(state: StateClient, ns: str) -> None:
    await state.put(ns, "session", {"v": "old"})
    put = await state.put(ns, "session", {"v": 1}, ttl_s=1)
    entry = await state.get(ns, "session")
    assert entry.expires_at is not None and entry.expires_at - entry.updated_at == 1
    assert put.revision == entry.revision

    async def expired() -> bool:
        try:
            await state.get(ns, "session", strong=True)
        except NotFound:
            return True
        return False

    await eventually(expired, timeout_s=5, interval_s=0.1, what="the key's TTL to expire")
    for strong in (False, True):
        with pytest.raises(NotFound):  # and the older revision did not come back
            await state.get(ns, "session", strong=strong)
    assert [k.key for k in (await state.list_keys(ns, strong=True)).items] == []
    await state.put(ns, "session", {"v": 2}, expected_revision=0)


async def settled(stack: Stack, revision: int) -> None:
    for app in stack.replicas:
        assert app.feed is not None and await app.feed.wait_fresh(revision, 2.0)


async def test_value_and_namespace_limits(state: StateClient, ns: str, stack: Stack) -> None:
    await state.configure(ns, NamespaceConfig(max_value_bytes=100, max_total_bytes=250))
    with pytest.raises(PayloadTooLarge) as e:
        await state.put(ns, "big", "x" * 200)
    assert e.value.details["max_value_bytes"] == 100
    await state.put(ns, "a", "x" * 90)
    await state.put(ns, "b", "x" * 90)
    await settled(stack, state.seen_revision)  # the quota counts what the index has applied
    with pytest.raises(PayloadTooLarge) as e:
        await state.put(ns, "c", "x" * 90)
    assert e.value.details["max_total_bytes"] == 250
    await state.put(ns, "a", "x" * 10)  # replacing a value frees its bytes
    await settled(stack, state.seen_revision)
    await state.put(ns, "c", "x" * 90)
    await settled(stack, state.seen_revision)
    info = (await state.namespaces(ns))[0]
    assert (info.keys, info.bytes) == (3, 12 + 92 + 92)


async def test_large_values_are_compressed_transparently(state: StateClient, ns: str,
                                                         stack: Stack) -> None:
    doc = {"bars": [[1.5, 2.5, 3.5, 4.5]] * 400}
    put = await state.put(ns, "bars", doc)
    assert put.compressed
    assert (await state.get(ns, "bars")).value == doc
    assert (await state.get(ns, "bars", strong=True)).value == doc
    # Stored compressed in the bucket itself (what nats-py's KeyValue reads).
    nc = await nats.connect(stack.nats.url)
    try:
        kv = await nc.jetstream().key_value("quantops_state")
        raw = await kv.get(f"{ns}.bars")
        assert raw.value is not None and len(raw.value) < len(msgspec.json.encode(doc)) // 4
    finally:
        await nc.close()


async def test_unknown_fields_are_tolerated_and_wrong_types_refused(client_bus: object,
                                                                   ns: str) -> None:
    from shared.bus import Bus

    assert isinstance(client_bus, Bus)
    body = msgspec.json.encode({"namespace": ns, "key": "k", "value": 1, "future": True})
    data, _ = await client_bus.request_raw(StateSubject.PUT, body)
    assert msgspec.json.decode(data)["revision"] > 0
    with pytest.raises(InvalidRequest):
        await client_bus.request(StateSubject.PUT, {"namespace": ns, "key": "k", "value": 1,
                                                    "ttl_s": 0}, dict)
    with pytest.raises(InvalidRequest):
        await client_bus.request(StateSubject.PUT, PutRequest(
            namespace=ns, key="k", value=msgspec.Raw(b"1"), schema_version=5), dict)


async def test_update_retries_conflicts_until_every_increment_lands(
        client_bus: object, ns: str) -> None:
    from shared.bus import Bus

    assert isinstance(client_bus, Bus)
    clients = [StateClient(client_bus) for _ in range(4)]

    async def bump(client: StateClient) -> None:
        for _ in range(25):
            await client.update(ns, "n", lambda v: {"n": v["n"] + 1}, default={"n": 0})

    await asyncio.gather(*(bump(c) for c in clients))
    assert (await clients[0].get(ns, "n", strong=True)).value == {"n": 100}
