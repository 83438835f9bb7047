"""Eight registrations at once get eight distinct, ordered versions; a stored artifact that was
tampered with is detected on download, never served."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest

from shared.clients.registry import RegistryClient
from shared.clients.registry_objects import chunk_subject, get_meta, stream_name
from shared.contracts.registry import INLINE_MAX_BYTES, ArtifactFormat, VersionSpec
from shared.errors import IntegrityError
from tests.integration.registry.support import Stack, connect

BINARY = VersionSpec(format=ArtifactFormat.BINARY)


async def test_eight_concurrent_registrations_get_distinct_ordered_versions(
    stack: Stack, unique: str
) -> None:
    model = f"conc-{unique}"
    buses = [await connect(stack.url, f"client-{i}") for i in range(8)]
    try:
        clients = [RegistryClient(b, principal=f"c{i}") for i, b in enumerate(buses)]
        # Half inline, half through the object store: both paths allocate from one sequence.
        payloads = [os.urandom(INLINE_MAX_BYTES + 1000 if i % 2 else 1000) for i in range(8)]
        results = await asyncio.gather(*(
            c.register(model, p, BINARY, idempotency_key=f"k{i}")
            for i, (c, p) in enumerate(zip(clients, payloads, strict=True))))
        versions = sorted(r.version for r in results)
        assert versions == list(range(1, 9))
        listed = (await clients[0].list_versions(model, sort="version")).items
        assert [v.version for v in listed] == versions
        stamps = [v.created_at for v in listed]
        assert stamps == sorted(stamps)  # numbering follows commit order
        for r, p in zip(results, payloads, strict=True):  # each got its own bytes
            assert (await clients[0].download(r.ref))[1] == p
    finally:
        for b in buses:
            await b.close()


async def test_replaced_object_is_detected_before_any_byte(client: RegistryClient,
                                                           unique: str) -> None:
    model = f"tamper-{unique}"
    v = await client.register(model, os.urandom(3 * INLINE_MAX_BYTES), BINARY)
    obs = await client.bus.js.object_store(v.artifact.bucket)
    # Bypass the registry: different bytes under the same object name.
    await obs.put(v.artifact.object_name, os.urandom(3 * INLINE_MAX_BYTES))
    with pytest.raises(IntegrityError) as e:
        await client.download(v.ref)
    assert e.value.details["expected_sha256"] == v.artifact.sha256


async def test_flipped_byte_in_a_stored_chunk_is_never_served_complete(
    client: RegistryClient, unique: str
) -> None:
    model = f"bitrot-{unique}"
    data = os.urandom(3 * INLINE_MAX_BYTES + 77)
    v = await client.register(model, data, BINARY)
    js, a = client.bus.js, v.artifact
    meta = await get_meta(js, a.bucket, a.object_name)
    assert meta is not None and meta.chunks > 2
    # Rewrite the chunk messages in the stream with one byte flipped in the middle one;
    # the meta message (and its digest) stays as it was.
    subject = chunk_subject(a.bucket, meta.nuid)
    chunks = await _stored_chunks(js, a.bucket, subject, meta.chunks)
    assert b"".join(chunks) == data
    await js.purge_stream(stream_name(a.bucket), subject=subject)
    middle = bytearray(chunks[1])
    middle[100] ^= 0xFF
    for chunk in (chunks[0], bytes(middle), *chunks[2:]):
        await js.publish(subject, chunk)
    received = 0
    info, stream = await client.open_artifact(v.ref)
    with pytest.raises(IntegrityError):
        async with contextlib.aclosing(stream):
            async for piece in stream:
                received += len(piece)
    assert received < len(data)  # the last chunk was withheld
    assert info.artifact.sha256 == v.artifact.sha256


async def _stored_chunks(js: Any, bucket: str, subject: str, count: int) -> list[bytes]:
    sub = await js.subscribe(subject, ordered_consumer=True, stream=stream_name(bucket))
    try:
        return [(await sub.next_msg(timeout=5)).data for _ in range(count)]
    finally:
        await sub.unsubscribe()
