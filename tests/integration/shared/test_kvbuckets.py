"""Locked KV buckets against a real nats-server: an older version's bucket is locked in place
(its data kept), rollups and purges are refused whoever asks, and an expiring delete marker
removes a key at once and then itself."""

from __future__ import annotations

import pytest
from nats.js.errors import APIError, KeyNotFoundError

from shared.bus import Bus
from shared.kvbuckets import delete_expiring, ensure_bucket
from tests.support import eventually

pytestmark = pytest.mark.timeout(30)


async def test_an_older_bucket_is_locked_in_place(bus: Bus, unique: str) -> None:
    js = bus.js
    bucket = f"lock{unique}"
    old = await js.create_key_value(bucket=bucket, history=1)  # what older versions made
    await old.put("k", b"kept")
    await js.publish(f"$KV.{bucket}.gone", b"x", headers={"Nats-Rollup": "sub"})  # allowed
    kv = await ensure_bucket(js, bucket, history=1, description="test")
    config = (await js.stream_info(f"KV_{bucket}")).config
    assert (config.deny_purge, config.deny_delete, config.allow_rollup_hdrs,
            config.allow_msg_ttl) == (True, True, False, True)
    assert (await kv.get("k")).value == b"kept"
    with pytest.raises(APIError, match="rollup not permitted"):
        await js.publish(f"$KV.{bucket}.x", b"", headers={"Nats-Rollup": "all"})
    with pytest.raises(APIError, match="purge not permitted"):
        await js.purge_stream(f"KV_{bucket}")
    with pytest.raises(APIError):
        await js.delete_msg(f"KV_{bucket}", 1)
    assert (await kv.get("k")).value == b"kept"
    again = await ensure_bucket(js, bucket, history=1, description="test")  # idempotent
    assert (await again.get("k")).value == b"kept"


async def test_an_expiring_marker_deletes_at_once_then_goes(bus: Bus, unique: str) -> None:
    js = bus.js
    bucket = f"mark{unique}"
    kv = await ensure_bucket(js, bucket, history=1, description="test")
    first = await kv.put("k", b"secret row")
    with pytest.raises(APIError):  # a stale revision deletes nothing
        await delete_expiring(js, bucket, "k", ttl_s=1.0, last=first + 5)
    await delete_expiring(js, bucket, "k", ttl_s=1.0, last=first)
    with pytest.raises(KeyNotFoundError):
        await kv.get("k")
    stream = f"KV_{bucket}"
    assert (await js.stream_info(stream)).state.messages == 1  # the marker alone

    async def marker_gone() -> bool:  # the server drops the marker after its TTL
        return (await js.stream_info(stream)).state.messages == 0

    await eventually(marker_gone, timeout_s=10, interval_s=0.1, what="the delete marker expired")
    assert await kv.create("k", b"new") > 0  # the key is free again
