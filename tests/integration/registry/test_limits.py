"""What a caller sends cannot reach outside the registry's storage, exceed its limits or smuggle
code-executing formats in; every refusal says why. This module's registry has a 2 MB limit."""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest

from shared import errors
from shared.clients.registry import RegistryClient
from shared.clients.registry_objects import stream_name
from shared.contracts.registry import (
    INLINE_MAX_BYTES,
    ArtifactFormat,
    ListVersions,
    RegisterVersion,
    VersionSpec,
)
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.subjects import STATUS_ERROR, Bucket, Header, RegistrySubject
from tests.integration.registry.support import Stack, new_stack

LIMIT = 2_000_000
BINARY = VersionSpec(format=ArtifactFormat.BINARY)
TRAVERSAL_NAMES = ["../etc/passwd", "..", "a/../../b", "/abs", "a/b", "a\\b", "a..b", ".hidden",
                   "%2e%2e", "a\x00b", "CON", "x" * 129, "model-", "é", ""]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    with new_stack(tmp_path_factory.mktemp("limits")) as s:
        await s.start(QUANTOPS_REGISTRY_MAX_ARTIFACT_BYTES=str(LIMIT))
        yield s


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
async def test_unsafe_model_names_are_refused(client: RegistryClient, name: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        await client.register(name, b"PK\x03\x04x")
    assert "invalid model name" in e.value.message
    with pytest.raises(InvalidRequest):
        await client.get(f"{name}@1")


async def test_unsafe_aliases_tags_metrics_ids_and_cursors_are_refused(
    client: RegistryClient, unique: str
) -> None:
    model = f"safe-{unique}"
    await client.register(model, b"PK\x03\x04x", VersionSpec(metrics={"rmse": 0.1}))
    refusals = [
        client.set_alias(model, "../prod", 1),
        client.get(f"{model}@../1"),
        client.register(model, b"PK\x03\x04x", VersionSpec(tags={"../k": "v"})),
        client.register(model, b"PK\x03\x04x", VersionSpec(tags={"k": "line\nbreak\x00"})),
        client.register(model, b"PK\x03\x04x", VersionSpec(metrics={"x/../y": 1.0})),
        client.list_versions(model, sort="-../secret"),
        client.list_versions(model, cursor="not-a-cursor"),
        client.commit_upload("../../catalog.db", "0" * 64, 1),
        client.register(model, b"PK\x03\x04x", idempotency_key="../../k"),
    ]
    for call in refusals:
        with pytest.raises(InvalidRequest):
            await call


async def test_nothing_lands_outside_the_registry_storage(client: RegistryClient,
                                                          stack: Stack) -> None:
    """After every refusal above, the data dir holds only the catalog, and the bucket only
    generated object names."""
    files = await asyncio.to_thread(_files_under, stack.data_dir)
    assert files <= {"registry/catalog.db", "registry/catalog.db-wal", "registry/catalog.db-shm"}
    info = await client.bus.js.stream_info(stream_name(Bucket.ARTIFACTS.value),
                                           subjects_filter=">")
    obs = await client.bus.js.object_store(Bucket.ARTIFACTS.value)
    names = {o.name for o in await obs.list(ignore_deletes=True)} if info.state.messages else set()
    assert all(n.startswith("artifacts/") and len(n) == len("artifacts/") + 32 for n in names)


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_oversized_artifacts_are_refused_and_leave_nothing(client: RegistryClient,
                                                                 unique: str) -> None:
    model = f"big-{unique}"
    with pytest.raises(PayloadTooLarge) as declared:  # known size: refused before any byte
        await client.register(model, os.urandom(LIMIT + 1), BINARY)
    assert declared.value.details["max_bytes"] == LIMIT

    async def stream() -> AsyncIterator[bytes]:  # unknown size: refused while streaming
        for _ in range(LIMIT // 65536 + 2):
            yield os.urandom(65536)

    with pytest.raises(PayloadTooLarge):
        await client.register(model, stream(), BINARY)
    with pytest.raises(PayloadTooLarge):  # inline is for small artifacts only
        await client.bus.request(RegistrySubject.REGISTER, RegisterVersion(
            model=model, artifact=b"\0" * (INLINE_MAX_BYTES + 1)), dict)
    assert (await client.list_models(prefix=model)).items == []
    info = await client.bus.js.stream_info(stream_name(Bucket.ARTIFACTS.value),
                                           subjects_filter="$O.*.C.>")
    # Only committed objects' chunks remain (others' tests), none of these attempts.
    obs = await client.bus.js.object_store(Bucket.ARTIFACTS.value)
    live = {o.nuid for o in await obs.list(ignore_deletes=True)}
    assert {s.rsplit(".", 1)[1] for s in info.state.subjects or {}} <= live


async def test_code_executing_formats_are_refused(client: RegistryClient, unique: str) -> None:
    model = f"pkl-{unique}"
    blob = pickle.dumps({"weights": [1, 2, 3]})
    with pytest.raises(InvalidRequest) as e:
        await client.register(model, blob, VersionSpec(format=ArtifactFormat.PICKLE))
    assert "runs code" in e.value.message
    with pytest.raises(InvalidRequest) as sniffed:  # a pickle in disguise
        await client.register(model, blob, BINARY)
    assert "pickle" in sniffed.value.message


async def test_malformed_requests_on_every_subject_get_invalid_request(stack: Stack) -> None:
    nc = await nats.connect(stack.url)
    try:
        wrong_types = msgspec.json.encode({"model": 1, "ref": 2, "upload_id": 3, "limit": "x"})
        for subject in RegistrySubject:
            for payload in (b"{not json", b"[]", b"\xff", wrong_types):
                reply = await nc.request(subject.value, payload, timeout=5)
                assert reply.headers and reply.headers.get(Header.STATUS) == STATUS_ERROR
                err = msgspec.json.decode(reply.data, type=errors.ErrorReply).error
                assert err.code == "invalid_request", (subject, err)
        typed = ListVersions(model="x", limit=1000)  # well-formed, out of range
        reply = await nc.request(RegistrySubject.LIST.value, msgspec.json.encode(typed),
                                 timeout=5)
        assert msgspec.json.decode(reply.data, type=errors.ErrorReply).error.code in (
            "invalid_request", "not_found")
    finally:
        await nc.close()
    assert all(p.alive() for p in stack.processes)
