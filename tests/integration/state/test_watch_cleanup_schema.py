"""The watch feed, cleanup of old keys, schema migrations on read, health and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from services.state import migrations
from shared.clients.state import StateClient
from shared.contracts.state import ChangeEvent, NamespaceConfig
from shared.errors import Conflict, InvalidRequest
from tests.integration.state.support import Stack
from tests.support import eventually


async def collect(state: StateClient, ns: str, prefix: str, n: int, live: asyncio.Event
                  ) -> list[ChangeEvent]:
    out: list[ChangeEvent] = []
    async for event in state.watch(ns, prefix=prefix, idle_s=60):
        if event is None:  # the first, once the watch is live
            live.set()
            continue
        out.append(event)
        if len(out) == n:
            break
    return out


async def test_watch_streams_puts_and_deletes_of_a_prefix(state: StateClient, ns: str) -> None:
    live = asyncio.Event()
    watcher = asyncio.create_task(collect(state, ns, "pos.", 3, live))
    await asyncio.wait_for(live.wait(), 5)
    first = await state.put(ns, "pos.AAPL", {"qty": 1})
    await state.put(ns, "other", "ignored: not the prefix")
    big = await state.put(ns, "pos.MSFT", {"bars": list(range(2000))})  # compressed
    gone = await state.delete(ns, "pos.AAPL")
    events = await asyncio.wait_for(watcher, 5)
    assert [(e.key, e.operation, e.revision) for e in events] == [
        ("pos.AAPL", "put", first.revision), ("pos.MSFT", "put", big.revision),
        ("pos.AAPL", "delete", gone.revision)]
    assert msgspec.json.decode(events[1].value) == {"bars": list(range(2000))}
    assert events[0].updated_at > 0


async def test_watch_refuses_a_wildcard_namespace(state: StateClient) -> None:
    with pytest.raises(InvalidRequest):
        async for _ in state.watch("*"):
            pass


async def test_cleanup_drops_only_keys_not_written_recently(state: StateClient, ns: str) -> None:
    for k in ("old.1", "old.2", "touched"):
        await state.put(ns, k, 1)
    written = time.time()
    # The clock is the condition here: the cleanup below takes keys older than 1 s.
    await eventually(lambda: time.time() - written > 1.2, timeout_s=5,
                     what="the first keys 1.2 s old")
    await state.put(ns, "touched", 2)
    await state.put(ns, "fresh", 3)
    dry = await state.cleanup(ns, older_than_s=1.0, dry_run=True)
    assert dry.deleted == ["old.1", "old.2"]
    assert len([k async for k in state.keys(ns)]) == 4  # a dry run deletes nothing
    done = await state.cleanup(ns, older_than_s=1.0)
    assert done.deleted == ["old.1", "old.2"] and done.skipped == 0
    assert sorted([k.key async for k in state.keys(ns)]) == ["fresh", "touched"]
    history = await state.history(ns, "old.1")
    assert history.entries[0].operation == "delete"  # recorded as a tombstone


@pytest.fixture
def schema_ns(ns: str) -> Iterator[str]:
    @migrations.migration(ns, from_version=1)
    def split_name(doc: dict[str, Any]) -> dict[str, Any]:
        first, _, last = doc["name"].partition(" ")
        return {"first": first, "last": last}

    @migrations.migration(ns, from_version=2)
    def add_risk(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "risk": "low"}

    yield ns
    migrations.unregister(ns)


async def test_old_values_are_migrated_on_read(state: StateClient, schema_ns: str) -> None:
    ns = schema_ns
    await state.put(ns, "trader", {"name": "Ada Lovelace"})
    await state.configure(ns, NamespaceConfig(schema_version=3))
    for strong in (False, True):
        entry = await state.get(ns, "trader", strong=strong)
        assert entry.value == {"first": "Ada", "last": "Lovelace", "risk": "low"}
        assert entry.schema_version == 3
    raw = await state.get_reply(ns, "trader")
    assert raw.stored_schema_version == 1  # the stored value is untouched
    await state.put(ns, "v3", {"first": "A", "last": "B", "risk": "high"})
    assert (await state.get(ns, "v3")).value["risk"] == "high"
    await state.put(ns, "v2", {"first": "C", "last": "D"}, schema_version=2)
    assert (await state.get(ns, "v2")).value == {"first": "C", "last": "D", "risk": "low"}


async def test_unknown_future_versions_fail_clearly(state: StateClient, schema_ns: str) -> None:
    ns = schema_ns
    with pytest.raises(InvalidRequest):  # no step from 3
        await state.configure(ns, NamespaceConfig(schema_version=4))
    await state.configure(ns, NamespaceConfig(schema_version=3))
    with pytest.raises(InvalidRequest):  # written as a version the namespace does not know
        await state.put(ns, "x", {}, schema_version=4)
    with pytest.raises(InvalidRequest):  # versions never go down
        await state.configure(ns, NamespaceConfig(schema_version=2))


async def test_a_value_newer_than_the_namespace_is_refused_on_read(
        state: StateClient, ns: str, stack: Stack) -> None:
    """Written behind the service's back in version 9 (raw KV): reading it fails clearly."""
    app = stack.replicas[0]
    assert app.store is not None
    await app.store.put(f"{ns}.future", b'{"a":1}', {"Quantops-Schema": "9"})
    with pytest.raises(Conflict) as e:
        await state.get(ns, "future", strong=True)
    assert e.value.details["stored_schema_version"] == 9
    assert "newer" in e.value.message


async def test_health_reports_store_status_and_usage(state: StateClient, ns: str,
                                                     stack: Stack) -> None:
    await state.put(ns, "a", "xyz")

    async def write_reported() -> tuple[dict[str, Any], dict[str, Any]] | None:
        deps, details = await stack.replicas[0].health()
        usage = details["namespaces"]
        seen = isinstance(usage, dict) and usage.get(ns, {}).get("keys", 0) > 0
        return (deps, details) if seen else None

    # The replica's usage follows its change feed: wait until it has applied the write.
    deps, details = await eventually(write_reported, what="the write in the health's usage")
    assert deps["jetstream"].ok
    usage = details["namespaces"]
    assert isinstance(usage, dict) and usage[ns]["keys"] == 1 and usage[ns]["bytes"] == 5
    cache = details["cache"]
    assert isinstance(cache, dict) and cache["ready"] and cache["live"]


async def test_metrics_count_operations_conflicts_and_bytes(state: StateClient, ns: str) -> None:
    from prometheus_client import REGISTRY

    from services.state import metrics

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    put = await state.put(ns, "m", "abcd")
    with pytest.raises(Conflict):
        await state.put(ns, "m", "x", expected_revision=put.revision + 1000)
    await state.get(ns, "m")
    metrics.flush()
    assert sample("quantops_state_operations_total", namespace=ns, operation="put",
                  outcome="ok") == 1
    assert sample("quantops_state_operations_total", namespace=ns, operation="put",
                  outcome="revision_conflict") == 1
    assert sample("quantops_state_conflicts_total", namespace=ns) == 1
    assert sample("quantops_state_bytes_written_total", namespace=ns) == 6
    assert sample("quantops_state_operations_total", namespace=ns, operation="get",
                  outcome="ok") == 1
