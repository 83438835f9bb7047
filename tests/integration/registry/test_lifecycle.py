"""The whole life of a model over NATS, against a real registry process and nats-server:
register (inline and through the object store), read, list, compare, promote, roll back,
audit, events, delete and cleanup."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import msgspec
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from shared.clients.registry import RegistryClient
from shared.contracts.base import Empty, HealthReply
from shared.contracts.registry import (
    INLINE_MAX_BYTES,
    ArtifactFormat,
    Lineage,
    RegistryEvent,
    VersionSpec,
)
from shared.errors import Conflict, NotFound
from shared.subjects import MODEL_EVENTS, Stream, health
from tests.integration.registry.support import Stack

SKOPS_LIKE = b"PK\x03\x04" + b"tiny model"


def spec(**metrics: float) -> VersionSpec:
    return VersionSpec(format=ArtifactFormat.BINARY, metrics=metrics,
                       trained_at=datetime(2024, 5, 1, tzinfo=UTC),
                       data_start=datetime(2020, 1, 1, tzinfo=UTC),
                       data_end=datetime(2023, 12, 31, tzinfo=UTC),
                       features=["ret_1", "ret_5", "vol_20"], tags={"universe": "fx"},
                       hyperparameters={"max_depth": 3, "lr": 0.1},
                       lineage=Lineage(task_id="t-1", data_sha256="ab" * 32, code_version="1.2"))


async def test_register_inline_and_staged_then_read_back(client: RegistryClient,
                                                         unique: str) -> None:
    model = f"life-{unique}"
    small = await client.register(model, SKOPS_LIKE,
                                  VersionSpec(metrics={"rmse": 0.02}, tags={"kind": "small"}))
    big_bytes = os.urandom(INLINE_MAX_BYTES * 3 + 12345)  # several chunks, not inline
    big = await client.register(model, big_bytes, spec(rmse=0.01, direction_accuracy=0.55))
    assert (small.version, big.version) == (1, 2)
    assert small.created_by == "tester"
    got = await client.get(f"{model}@2")
    assert got.spec.features == ["ret_1", "ret_5", "vol_20"]
    assert got.spec.hyperparameters == {"max_depth": 3, "lr": 0.1}
    assert got.spec.lineage.code_version == "1.2"
    assert got.spec.data_end == datetime(2023, 12, 31, tzinfo=UTC)
    assert got.artifact.size_bytes == len(big_bytes)
    assert (await client.get(model)).version == 2  # bare name = latest
    info, data = await client.download(f"{model}@latest")
    assert data == big_bytes and info.version == 2
    assert (await client.download(f"{model}@1"))[1] == SKOPS_LIKE


async def test_list_filters_sorts_and_paginates_in_the_registry(client: RegistryClient,
                                                                unique: str) -> None:
    model = f"list-{unique}"
    for i in range(12):
        await client.register(model, SKOPS_LIKE, VersionSpec(
            metrics={"direction_accuracy": 0.5 + i / 100, "rmse": 0.02 - i / 1000},
            tags={"parity": "even" if i % 2 == 0 else "odd"},
            trained_at=datetime(2024, 1, 1 + i, tzinfo=UTC)))
    page = await client.list_versions(model, metrics=["direction_accuracy>=0.52", "rmse<0.015"],
                                      sort="-direction_accuracy", limit=3)
    assert [v.version for v in page.items] == [12, 11, 10]
    rest = [v.version async for v in client.iter_versions(
        model, metrics=["direction_accuracy>=0.52", "rmse<0.015"], sort="-direction_accuracy",
        limit=3)]
    assert rest == [12, 11, 10, 9, 8, 7]  # rmse < 0.015 means i > 5
    evens = await client.list_versions(model, tags={"parity": "even"}, sort="rmse")
    assert [v.version for v in evens.items] == [11, 9, 7, 5, 3, 1]
    window = await client.list_versions(model, trained_from=datetime(2024, 1, 3, tzinfo=UTC),
                                        trained_to=datetime(2024, 1, 5, tzinfo=UTC),
                                        sort="trained_at")
    assert [v.version for v in window.items] == [3, 4, 5]
    assert window.items[0].metrics["direction_accuracy"] == pytest.approx(0.52)
    models = await client.list_models(prefix=model)
    assert [(m.name, m.versions, m.latest_version) for m in models.items] == [(model, 12, 12)]


async def test_compare_reports_values_deltas_and_winners(client: RegistryClient,
                                                         unique: str) -> None:
    model = f"cmp-{unique}"
    await client.register(model, SKOPS_LIKE, VersionSpec(metrics={
        "rmse": 0.02, "sharpe": 1.0, "custom_score": 3.0, "max_drawdown": 0.2}))
    await client.register(model, SKOPS_LIKE, VersionSpec(metrics={
        "rmse": 0.01, "sharpe": 0.8, "custom_score": 4.0, "max_drawdown": 0.2}))
    result = await client.compare(f"{model}@1", f"{model}@2")
    by_name = {m.name: m for m in result.metrics}
    assert by_name["rmse"].winner == f"{model}@2" and by_name["rmse"].direction == "lower"
    assert by_name["rmse"].deltas[1] == pytest.approx(-0.01)
    assert by_name["sharpe"].winner == f"{model}@1"
    assert by_name["custom_score"].direction == "unknown" and by_name["custom_score"].winner is None
    assert by_name["max_drawdown"].winner is None  # a tie


async def test_promote_rollback_audit_and_events(client: RegistryClient, unique: str) -> None:
    model = f"alias-{unique}"
    js = client.bus.js
    sub = await js.subscribe(MODEL_EVENTS, stream=Stream.EVENTS.value, config=ConsumerConfig(
        deliver_policy=DeliverPolicy.NEW))
    for _ in range(3):
        await client.register(model, SKOPS_LIKE)
    for v in (1, 2, 3):
        await client.promote(model, v, reason=f"v{v} is better")
    assert (await client.get(f"{model}@production")).version == 3
    assert (await client.rollback(model, reason="v3 misbehaves")).version == 2
    assert (await client.rollback(model)).version == 1  # walks back, not 3 again
    with pytest.raises(Conflict):
        await client.rollback(model)
    await client.set_alias(model, "staging", 3)
    assert await client.aliases(model) == {"production": 1, "staging": 3}
    entries = (await client.audit(model)).items
    moves = [(e.action, e.from_version, e.to_version) for e in reversed(entries)
             if e.action != "register"]
    assert moves == [("promote", None, 1), ("promote", 1, 2), ("promote", 2, 3),
                     ("rollback", 3, 2), ("rollback", 2, 1), ("set_alias", None, 3)]
    first_rollback = next(e for e in entries if e.action == "rollback" and e.to_version == 2)
    assert first_rollback.principal == "tester" and first_rollback.reason == "v3 misbehaves"
    events = []
    while len(events) < 9:
        msg = await sub.next_msg(timeout=5)
        event = msgspec.json.decode(msg.data, type=RegistryEvent)
        if event.model == model:
            events.append((msg.subject, event.to_version))
    await sub.unsubscribe()
    assert events[3:] == [("events.model.promoted", 1), ("events.model.promoted", 2),
                          ("events.model.promoted", 3), ("events.model.rolled_back", 2),
                          ("events.model.rolled_back", 1), ("events.model.alias_moved", 3)]


async def test_delete_guard_and_cleanup_keep_aliased(client: RegistryClient, unique: str,
                                                     stack: Stack) -> None:
    model = f"clean-{unique}"
    for _ in range(6):
        await client.register(model, SKOPS_LIKE)
    await client.promote(model, 2)
    with pytest.raises(Conflict) as refused:
        await client.delete(f"{model}@production")
    assert refused.value.details["aliases"] == ["production"]
    dry = await client.cleanup(model, keep=2, dry_run=True)
    assert dry.deleted == [f"{model}@4", f"{model}@3", f"{model}@1"]
    assert (await client.list_models(prefix=model)).items[0].versions == 6
    done = await client.cleanup(model, keep=2)
    assert done.deleted == dry.deleted and done.kept_for_aliases == [f"{model}@2"]
    remaining = [v.version for v in (await client.list_versions(model)).items]
    assert remaining == [6, 5, 2]
    await client.delete(f"{model}@5", reason="bad data")
    with pytest.raises(NotFound):
        await client.get(f"{model}@5")
    assert (await client.register(model, SKOPS_LIKE)).version == 7  # numbers never reused


async def test_idempotent_registration_returns_the_same_version(client: RegistryClient,
                                                                unique: str) -> None:
    model = f"idem-{unique}"
    big = os.urandom(INLINE_MAX_BYTES + 1)
    binary = VersionSpec(format=ArtifactFormat.BINARY)
    first = await client.register(model, big, binary, idempotency_key="train-42")
    again = await client.register(model, big, binary, idempotency_key="train-42")
    inline = await client.register(model, SKOPS_LIKE, idempotency_key="train-43")
    inline_again = await client.register(model, SKOPS_LIKE, idempotency_key="train-43")
    assert first.version == again.version == 1
    assert inline.version == inline_again.version == 2
    assert (await client.list_models(prefix=model)).items[0].versions == 2


async def test_health_reports_dependencies_counts_and_bytes(client: RegistryClient,
                                                            unique: str) -> None:
    await client.register(f"health-{unique}", SKOPS_LIKE)
    reply = await client.bus.request(health("registry"), Empty(), HealthReply)
    assert reply.status == "ok"
    assert {"nats", "catalog", "object_store"} <= set(reply.dependencies)
    assert int(reply.details["versions"]) >= 1  # type: ignore[call-overload]
    assert int(reply.details["bucket_bytes"]) > 0  # type: ignore[call-overload]
    await asyncio.sleep(0)


async def test_cleanup_and_delete_take_evaluations_along_and_keep_the_kept_ones(
        client: RegistryClient, unique: str) -> None:
    """As ``train_model`` registers: each version's ``evaluation`` tag names its companion in
    ``<model>.evaluation``. Cleaning the model takes the companions of what it deletes; cleaning
    the evaluations (or everything) never deletes the evaluation of a version that remains."""
    model, evals = f"paired-{unique}", f"paired-{unique}.evaluation"
    for _ in range(6):
        e = await client.register(evals, SKOPS_LIKE)
        await client.register(model, SKOPS_LIKE, spec=VersionSpec(
            format=ArtifactFormat.BINARY, tags={"evaluation": e.ref}))
    await client.promote(model, 1)
    # Before this fix: the evaluations model, cleaned alone, lost evaluations 1-3 (and so the
    # production version's); now the ones a remaining version names are kept.
    alone = await client.cleanup(evals, keep=2)
    assert alone.deleted == []
    assert alone.kept_for_aliases == [f"{evals}@{v}" for v in (4, 3, 2, 1)]
    done = await client.cleanup(model, keep=2)
    assert done.deleted == [f"{model}@{v}" for v in (4, 3, 2)] + [f"{evals}@{v}"
                                                                   for v in (4, 3, 2)]
    assert done.kept_for_aliases == [f"{model}@1"]
    assert [v.version for v in (await client.list_versions(evals)).items] == [6, 5, 1]
    one = await client.delete(f"{model}@5")
    assert one.deleted == [f"{model}@5", f"{evals}@5"]
    with pytest.raises(NotFound):
        await client.get(f"{evals}@5")
    # An aliased companion stays when its version goes.
    await client.promote(evals, 6)
    assert (await client.delete(f"{model}@6")).deleted == [f"{model}@6"]
    assert (await client.get(f"{evals}@6")).version == 6
