"""Snapshots: one checksummed file; restore makes a namespace exactly as snapshotted, refuses
a corrupted file without writing anything, and large restores finish under a journal."""

from __future__ import annotations

import msgspec
import pytest

from services.state import snapshot_format
from shared.clients.state import StateClient
from shared.contracts.state import NamespaceConfig
from shared.errors import IntegrityError, InvalidRequest, NotFound
from tests.integration.state.support import Stack
from tests.support import eventually


async def contents(state: StateClient, ns: str) -> dict[str, object]:
    return {k.key: (await state.get(ns, k.key, strong=True)).value
            async for k in state.keys(ns)}


async def test_snapshot_and_restore_round_trip(state: StateClient, ns: str) -> None:
    await state.configure(ns, NamespaceConfig(max_value_bytes=50_000))
    await state.put(ns, "a", {"v": 1})
    await state.put(ns, "big", {"bars": list(range(3000))})  # stored compressed
    await state.put(ns, "gone.later", "x")
    before = await contents(state, ns)
    snap = await state.snapshot(ns)
    assert snap.records == 4 and snap.namespaces == [ns] and len(snap.sha256) == 64
    assert snap.name in {s.name for s in await state.snapshots()}

    await state.put(ns, "a", {"v": 2})
    await state.delete(ns, "gone.later")
    await state.put(ns, "new", "not in the snapshot")
    await state.configure(ns, NamespaceConfig(max_value_bytes=60_000))
    reply = await state.restore(snap.name)
    assert reply.atomic and (reply.written, reply.deleted) == (2, 1)
    assert await contents(state, ns) == before
    assert (await state.namespaces(ns))[0].config.max_value_bytes == 50_000
    again = await state.restore(snap.name)
    assert (again.written, again.deleted) == (0, 0)  # idempotent: nothing left to change


async def test_the_file_is_one_checksummed_download(state: StateClient, ns: str) -> None:
    await state.put(ns, "k", [1, 2, 3])
    snap = await state.snapshot(ns)
    data = await state.download_snapshot(snap.name)
    header, records = snapshot_format.parse(data)
    assert header.sha256 == snap.sha256 and len(records) == 1


async def test_a_corrupted_snapshot_is_refused_and_nothing_is_written(state: StateClient,
                                                                      ns: str) -> None:
    for i in range(5):
        await state.put(ns, f"k{i}", {"v": i})
    snap = await state.snapshot(ns)
    data = bytearray(await state.download_snapshot(snap.name))
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")  # one digit of the last value
    await state.upload_snapshot(f"corrupt-{ns}.qsnap", bytes(data))
    for i in range(5):
        await state.put(ns, f"k{i}", {"v": i * 10})
    expected = await contents(state, ns)
    with pytest.raises(IntegrityError) as e:
        await state.restore(f"corrupt-{ns}.qsnap")
    assert "checksum" in e.value.message
    assert await contents(state, ns) == expected


async def test_an_invalid_record_refuses_the_whole_restore(state: StateClient, ns: str) -> None:
    """Checksum fine, but one record breaks a limit: the atomic plan writes nothing."""
    await state.put(ns, "keep", 1)
    records: list[snapshot_format.Record] = [
        snapshot_format.ValueRecord(namespace=ns, key=f"k{i}", value=msgspec.Raw(b"1"))
        for i in range(10)]
    records.append(snapshot_format.ValueRecord(namespace=ns, key="huge",
                                               value=msgspec.Raw(b'"' + b"x" * 2_000_000 + b'"')))
    data = snapshot_format.render(records, namespaces=[ns], created_at=0)
    await state.upload_snapshot(f"huge-{ns}.qsnap", data)
    with pytest.raises(Exception) as e:
        await state.restore(f"huge-{ns}.qsnap")
    assert e.value.__class__.__name__ == "PayloadTooLarge"
    assert await contents(state, ns) == {"keep": 1}


async def test_restore_one_namespace_of_a_full_snapshot(state: StateClient, unique: str) -> None:
    a, b = f"a{unique}", f"b{unique}"
    await state.put(a, "k", "a1")
    await state.put(b, "k", "b1")
    snap = await state.snapshot()
    assert {a, b} <= set(snap.namespaces)
    await state.put(a, "k", "a2")
    await state.put(b, "k", "b2")
    await state.restore(snap.name, a)
    assert (await state.get(a, "k", strong=True)).value == "a1"
    assert (await state.get(b, "k", strong=True)).value == "b2"
    with pytest.raises(InvalidRequest):
        await state.restore(snap.name, f"c{unique}")


async def test_missing_snapshot(state: StateClient) -> None:
    with pytest.raises(NotFound):
        await state.restore("no-such-snapshot.qsnap")


async def test_a_large_restore_is_journaled_and_completes(state: StateClient, ns: str,
                                                          stack: Stack) -> None:
    records: list[snapshot_format.Record] = [
        snapshot_format.ValueRecord(namespace=ns, key=f"k{i:05d}", value=msgspec.Raw(b"%d" % i))
        for i in range(2500)]
    await state.upload_snapshot(f"large-{ns}.qsnap", snapshot_format.render(
        records, namespaces=[ns], created_at=0))
    await state.put(ns, "extra", "deleted by the restore")
    reply = await state.restore(f"large-{ns}.qsnap")
    assert not reply.atomic and (reply.written, reply.deleted) == (2500, 1)
    listed = [k.key async for k in state.keys(ns)]
    assert len(listed) == 2500 and "extra" not in listed
    assert all(not app.index.journals for app in stack.replicas)  # the journal was closed


async def test_a_journal_left_by_a_dead_replica_is_resumed(state: StateClient, ns: str,
                                                           stack: Stack) -> None:
    """Simulate a replica that died after its first chunk: the journal names the snapshot."""
    from services.state.snapshots import Journal, Snapshots

    await state.put(ns, "k", "after snapshot")
    snap = await state.snapshot(ns)
    await state.put(ns, "k", "changed")
    await state.put(ns, "half", "from the dead restore's first chunk")
    app = stack.replicas[0]
    assert app.store is not None and app.namespaces is not None
    assert app.feed is not None
    revision = await app.store.put(f"_restore.dead{ns}", msgspec.json.encode(
        Journal(name=snap.name, namespace=ns, heartbeat_at=0)), {})
    assert await app.feed.wait_fresh(revision, 1.0)
    assert f"_restore.dead{ns}" in app.index.journals
    snapshots = Snapshots(app.store, app.index, app.namespaces, app.settings.state)
    await snapshots.resume_stale()
    assert await contents(state, ns) == {"k": "after snapshot"}
    # The journal's tombstone reaches the index through the feed.
    await eventually(lambda: f"_restore.dead{ns}" not in app.index.journals, timeout_s=1,
                     interval_s=0.01, what="the stale journal gone from the index")


async def test_a_journal_whose_snapshot_vanished_is_abandoned(stack: Stack, ns: str) -> None:
    from services.state.snapshots import Journal, Snapshots

    app = stack.replicas[0]
    assert app.store is not None and app.namespaces is not None and app.feed is not None
    item = f"_restore.lost{ns}"
    revision = await app.store.put(item, msgspec.json.encode(
        Journal(name="never-uploaded.qsnap", namespace=ns, heartbeat_at=0)), {})
    assert await app.feed.wait_fresh(revision, 1.0)
    snapshots = Snapshots(app.store, app.index, app.namespaces, app.settings.state)
    assert await snapshots.resume_stale() == 0
    latest = await app.store.last(item)
    assert latest is not None and latest.removed  # not retried forever
