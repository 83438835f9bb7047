"""A version is fully there or not at all: a registry SIGKILLed between artifact upload and
catalog commit leaves no visible version and, after restart, no orphan in the object store;
a catalog row whose object vanished is removed at start-up."""

from __future__ import annotations

import asyncio
import os

import pytest

from shared.clients.registry import RegistryClient
from shared.clients.registry_objects import chunk_subject, stream_name
from shared.contracts.base import Empty, HealthReply
from shared.contracts.registry import INLINE_MAX_BYTES, ArtifactFormat, VersionSpec
from shared.errors import NotFound
from shared.subjects import Bucket, health
from tests.integration.registry.support import Stack, connect
from tests.support import eventually

BINARY = VersionSpec(format=ArtifactFormat.BINARY)
BUCKET = Bucket.ARTIFACTS.value


async def _wait_for_log(stack: Stack, text: str, timeout_s: float = 20.0) -> None:
    await eventually(lambda: any(text in p.log() for p in stack.processes),
                     timeout_s=timeout_s, interval_s=0.05, what=f"{text!r} logged")


async def _stored_subjects(client: RegistryClient) -> dict[str, int]:
    info = await client.bus.js.stream_info(stream_name(BUCKET), subjects_filter=">")
    return dict(info.state.subjects or {})


async def test_sigkill_between_upload_and_commit_leaves_nothing(fresh_stack: Stack) -> None:
    paused = await fresh_stack.start(QUANTOPS_REGISTRY_TEST_PAUSE_BEFORE_COMMIT_S="120")
    bus = await connect(fresh_stack.url)
    client = RegistryClient(bus)
    try:
        data = os.urandom(2 * INLINE_MAX_BYTES + 5)
        attempt = asyncio.create_task(client.register("crashy", data, BINARY,
                                                      idempotency_key="job-1"))
        await _wait_for_log(fresh_stack, "test hook: pausing between upload and commit")
        # The bytes are in the object store, the commit has not happened: kill it right here.
        objects = {k for k in await _stored_subjects(client) if ".M." in k}
        assert len(objects) == 1
        paused.kill()
        attempt.cancel()
        with pytest.raises((asyncio.CancelledError, Exception)):
            await attempt
        await fresh_stack.start()
        with pytest.raises(NotFound):
            await client.get("crashy")
        assert (await client.list_models(prefix="crashy")).items == []
        assert await _stored_subjects(client) == {}  # no object, no chunk left behind
        reply = await bus.request(health("registry"), Empty(), HealthReply)
        assert reply.details["orphan_check"]["deleted_objects"] == 1  # type: ignore[index]
        # The retry (same idempotency key) now registers version 1, once.
        again = await client.register("crashy", data, BINARY, idempotency_key="job-1")
        assert again.version == 1
        assert (await client.download("crashy@1"))[1] == data
    finally:
        await bus.close()


async def test_startup_removes_rows_without_objects_and_stray_chunks(fresh_stack: Stack
                                                                     ) -> None:
    first = await fresh_stack.start()
    bus = await connect(fresh_stack.url)
    client = RegistryClient(bus)
    try:
        kept = await client.register("orph", b"PK\x03\x04keep")
        lost = await client.register("orph", b"PK\x03\x04lose")
        await client.promote("orph", lost.version)
        first.stop()
        obs = await bus.js.object_store(BUCKET)
        await obs.delete(lost.artifact.object_name)  # the object vanishes behind its back
        stray = chunk_subject(BUCKET, "STRAYNUIDFROMADEADCLIENT")  # an upload cut off mid-way
        await bus.js.publish(stray, b"half an artifact")
        await fresh_stack.start()
        assert (await client.get("orph")).version == kept.version
        with pytest.raises(NotFound):
            await client.get(lost.ref)
        assert await client.aliases("orph") == {}
        audit = [(e.action, e.from_version) for e in (await client.audit("orph")).items]
        assert ("orphan_removed", lost.version) in audit
        assert stray not in await _stored_subjects(client)
    finally:
        await bus.close()
