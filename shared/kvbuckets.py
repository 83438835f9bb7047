"""KV buckets whose data cannot be erased through the stream API, and how their keys go.

nats-py's ``create_key_value`` makes a bucket that allows rollup headers and stream purges:
then whoever may publish into ``$KV.<bucket>.>`` can erase the whole bucket with one
``Nats-Rollup: all`` message, and a purge request wipes it. The buckets made here deny both
(``deny_purge``, ``deny_delete``, no rollup headers); nats-server then refuses any rollup
("rollup not permitted"), any ``STREAM.PURGE`` and any ``STREAM.MSG.DELETE``, whoever asks.

A key is removed with an *expiring delete marker* instead of a KV purge (which is a rollup):
in a history-1 bucket the marker replaces the key's value at once (one message per subject),
readers see the key as deleted, and the marker carries ``Nats-TTL`` so the server removes it
later by itself: markers do not accumulate, and nothing is left of the key.
"""

from __future__ import annotations

from nats.js import JetStreamContext, api
from nats.js.errors import APIError, BadRequestError
from nats.js.kv import KV_DEL, KV_OP, KeyValue

_STREAM_IN_USE = 10058


def bucket_config(bucket: str, *, history: int, description: str, replicas: int,
                  direct: bool) -> api.StreamConfig:
    """What ``create_key_value`` would make, minus every way to erase data in bulk, plus
    per-message TTLs (the expiring markers)."""
    return api.StreamConfig(
        name=f"KV_{bucket}", description=description, subjects=[f"$KV.{bucket}.>"],
        allow_direct=direct, allow_rollup_hdrs=False, deny_delete=True, deny_purge=True,
        allow_msg_ttl=True, discard=api.DiscardPolicy.NEW, duplicate_window=120.0,
        max_consumers=-1, max_msgs=-1, max_msgs_per_subject=history,
        num_replicas=replicas, storage=api.StorageType.FILE)


async def ensure_bucket(js: JetStreamContext, bucket: str, *, history: int, description: str,
                        replicas: int = 1, direct: bool = True) -> KeyValue:
    """Create the bucket, or lock one an older version created with rollups and purges
    allowed (a stream update; the bucket's data stays)."""
    wanted = bucket_config(bucket, history=history, description=description,
                           replicas=replicas, direct=direct)
    try:
        await js.add_stream(wanted)
    except (BadRequestError, APIError) as e:
        if e.err_code != _STREAM_IN_USE:
            raise
        have = (await js.stream_info(f"KV_{bucket}")).config
        if not (have.deny_purge and have.deny_delete and have.allow_msg_ttl) or (
                have.allow_rollup_hdrs):
            have.allow_rollup_hdrs, have.deny_delete, have.deny_purge = False, True, True
            have.allow_msg_ttl = True
            await js.update_stream(have)
    return await js.key_value(bucket)


async def delete_expiring(js: JetStreamContext, bucket: str, key: str, *, ttl_s: float,
                          last: int | None = None) -> api.PubAck:
    """Delete ``key`` with a marker the server removes ``ttl_s`` later; with ``last``, only if
    the key is still at that revision (else nats-py raises the wrong-last-sequence error)."""
    headers = {KV_OP: KV_DEL}
    if last is not None:
        headers[api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(last)
    return await js.publish(f"$KV.{bucket}.{key}", b"", headers=headers, msg_ttl=ttl_s)
