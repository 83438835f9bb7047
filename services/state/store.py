"""Persistence: the one JetStream KV bucket that holds every namespace.

One bucket with namespaced keys (``<namespace>.<key>``), not a bucket per namespace, because:

- revisions are sequences of one stream, so a revision is a point in one global order: a
  replica's cache is fresh for a caller exactly when it has applied the highest revision that
  caller has seen (``min_revision``); with a bucket per namespace that token would be a vector;
- one ordered consumer feeds each replica's cache, usage and expiry bookkeeping for every
  namespace, instead of discovering and watching a growing set of streams;
- a namespace costs nothing to create (first write), so no replica races to create streams;
- snapshots of everything and restores across namespaces are reads and atomic batches on one
  stream.

The cost: per-namespace limits are enforced by the service (JetStream's ``max_bytes`` would be
per bucket and would count history), and every namespace shares the bucket's history depth.

Values are stored the JetStream KV way (subject ``$KV.<bucket>.<ns>.<key>``, tombstones with
``KV-Operation``), so nats-py's ``KeyValue`` can read the bucket; the service adds its own
headers (``shared.contracts.state.StoredHeader``). Writes are raw publishes, because nats-py's
``KeyValue`` cannot combine compare-and-set, a TTL, a rollup and extra headers in one write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api

from services.state import leader_reads
from services.state.timefmt import parse_duration_s, parse_time
from shared import push_consumers as consumers
from shared.errors import (
    PayloadTooLarge,
    QuantopsError,
    RevisionConflict,
    ServiceTimeout,
    ServiceUnavailable,
)
from shared.kvfeed import KvEntry
from shared.subjects import STATE_CHANGES_PREFIX

EXPECTED_LAST: Final = "Nats-Expected-Last-Subject-Sequence"
TTL: Final = "Nats-TTL"
ROLLUP: Final = "Nats-Rollup"
#: Deduplication id (``duplicate_window`` of the stream): idempotency keys of writes.
MSG_ID: Final = "Nats-Msg-Id"
#: Most messages one atomic batch may hold (nats-server's ``max_msgs`` batch limit).
MAX_BATCH: Final = 1000
_WRONG_LAST_SEQUENCE: Final = 10071
#: A replicated stream refuses a CAS whose key has another write in flight with this code and
#: no current sequence (JSStreamWrongLastSequenceConstantErr): nothing was written, a conflict.
_WRONG_LAST_SEQUENCE_IN_FLIGHT: Final = 10164
#: A replicated stream whose leader is not ready to check expectations yet (just elected):
#: nothing was written; retrying shortly succeeds.
_EXPECTED_LAST_NOT_READY: Final = 10163
_TOO_LARGE: Final = 10054


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    error: _ApiError | None = None


_ack_decoder = msgspec.json.Decoder(_PubAck)


@dataclass(frozen=True, slots=True)
class Stored(KvEntry):
    """One stored message of the state bucket: ``key`` is ``<namespace>.<key>``
    (``names.split``), ``removed`` a tombstone; the state service reads its TTL too."""

    @property
    def expires_at(self) -> float | None:
        ttl = self.headers.get(TTL)
        return None if ttl is None else self.timestamp + parse_duration_s(ttl)


class KvStore:
    """Reads and writes of the state bucket.

    Args:
        nc: a connected client.
        bucket: the KV bucket name (stream ``KV_<bucket>``).
        history: revisions kept per key.
        timeout_s: how long one JetStream request may take.
    """

    def __init__(self, nc: NATS, *, bucket: str, history: int, timeout_s: float = 5.0,
                 replicas: int = 1) -> None:
        self.nc = nc
        self.replicas = replicas
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."
        self.history = history
        self.timeout_s = timeout_s
        self._direct = f"$JS.API.DIRECT.GET.{self.stream}"

    def stream_config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}>"], max_msgs_per_subject=self.history,
            discard=api.DiscardPolicy.NEW, allow_rollup_hdrs=True, deny_delete=True,
            allow_direct=True, allow_msg_ttl=True, allow_atomic=True,
            storage=api.StorageType.FILE, num_replicas=self.replicas, duplicate_window=120.0,
            republish=api.RePublish(src=f"{self.prefix}>", dest=f"{STATE_CHANGES_PREFIX}.>"),
        )

    async def ensure(self) -> None:
        """Create the bucket's stream, or bring an existing one up to this configuration."""
        js = self.nc.jetstream()
        wanted = self.stream_config()
        try:
            info = await js.stream_info(self.stream)
        except Exception:
            try:
                await js.add_stream(wanted)
                return
            except Exception:  # another replica created it first
                info = await js.stream_info(self.stream)
        have = info.config
        if (have.allow_msg_ttl, have.allow_atomic, have.allow_direct, have.republish,
                have.max_msgs_per_subject) != (True, True, True, wanted.republish,
                                               self.history):
            await js.update_stream(wanted)

    async def put(self, item: str, data: bytes, headers: dict[str, str]) -> int:
        """Publish a value (or tombstone) and wait for the stream to store it; its revision."""
        ack = await self._request(self.prefix + item, data, headers)
        if ack.error is not None:
            raise _api_error(ack.error, item)
        return ack.seq

    async def last(self, item: str) -> Stored | None:
        """The latest message of ``item`` (a tombstone included), or None; every write
        acknowledged before the call is seen (on R>1 the leader answers: ``leader_reads``)."""
        if self.replicas > 1:
            return self._stored(await leader_reads.last_by_subject(
                self.nc, self.stream, self.prefix + item, self.timeout_s))
        return await self._direct_get(f"{self._direct}.{self.prefix}{item}", b"")

    async def at(self, revision: int) -> Stored | None:
        stored = await self._direct_get(self._direct, b'{"seq":%d}' % revision)
        if stored is None and self.replicas > 1:  # a follower may not have it yet
            return self._stored(await leader_reads.by_sequence(
                self.nc, self.stream, revision, self.timeout_s))
        return stored

    def _stored(self, m: leader_reads.LeaderMessage | None) -> Stored | None:
        if m is None:
            return None
        return Stored(m.subject[len(self.prefix):], m.seq, m.data, m.headers, parse_time(m.time))

    async def _direct_get(self, subject: str, body: bytes) -> Stored | None:
        try:
            msg = await self.nc.request(subject, body, timeout=self.timeout_s)
        except NoRespondersError as e:
            raise ServiceUnavailable("JetStream does not answer for the state bucket",
                                     details={"stream": self.stream}) from e
        except (NatsTimeout, TimeoutError) as e:
            raise ServiceTimeout("JetStream did not answer a read in time") from e
        headers = msg.headers or {}
        status = headers.get(consumers.STATUS)
        if status == "404":
            return None
        if status is not None:
            raise QuantopsError(f"direct get failed: {status} {headers.get('Description', '')}")
        return Stored(headers["Nats-Subject"][len(self.prefix):], int(headers["Nats-Sequence"]),
                      msg.data, headers, parse_time(headers["Nats-Time-Stamp"]))

    async def _request(self, subject: str, data: bytes, headers: dict[str, str]) -> _PubAck:
        try:
            reply = await self.nc.request(subject, data, timeout=self.timeout_s, headers=headers)
        except NoRespondersError as e:
            raise ServiceUnavailable("JetStream does not answer for the state bucket",
                                     details={"stream": self.stream}) from e
        except (NatsTimeout, TimeoutError) as e:
            # The write may still have happened: the caller must read before retrying a CAS.
            raise ServiceTimeout("JetStream did not acknowledge the write in time; its outcome "
                                 "is unknown") from e
        return _ack_decoder.decode(reply.data)

    async def commit_batch(self, messages: Sequence[tuple[str, bytes, dict[str, str]]]) -> int:
        """Store ``messages`` atomically (a JetStream atomic batch): all of them or none."""
        if not 0 < len(messages) <= MAX_BATCH:
            raise ValueError(f"an atomic batch holds 1..{MAX_BATCH} messages")
        batch = uuid.uuid4().hex
        last = len(messages)
        for n, (item, data, headers) in enumerate(messages[:-1], start=1):
            hdrs = {**headers, "Nats-Batch-Id": batch, "Nats-Batch-Sequence": str(n)}
            await self.nc.publish(self.prefix + item, data, headers=hdrs)
        item, data, headers = messages[-1]
        ack = await self._request(self.prefix + item, data, {
            **headers, "Nats-Batch-Id": batch, "Nats-Batch-Sequence": str(last),
            "Nats-Batch-Commit": "1"})
        if ack.error is not None:
            raise _api_error(ack.error, item)
        return ack.seq

    async def scan(self, pattern: str, *, last_only: bool, headers_only: bool = False
                   ) -> list[Stored]:
        """Every message matching ``pattern`` (bucket keys, wildcards allowed), in stream
        order: only the latest per key when ``last_only``, else the whole history."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, pending_msgs_limit=1_000_000,
                                      pending_bytes_limit=1 << 30)
        config = consumers.consumer_config(
            inbox, self.prefix + pattern, headers_only=headers_only,
            deliver_policy="last_per_subject" if last_only else "all")
        try:
            info = await consumers.create(self.nc, self.stream, config, timeout_s=self.timeout_s)
            try:
                return await self._drain(sub, int(info.get("num_pending", 0)))
            finally:
                await consumers.delete(self.nc, self.stream, info["name"])
        finally:
            await sub.unsubscribe()

    async def _drain(self, sub: Any, pending: int) -> list[Stored]:
        out: list[Stored] = []
        expected = 1
        while pending > 0:
            try:
                msg = await sub.next_msg(timeout=self.timeout_s)
            except (NatsTimeout, TimeoutError) as e:
                raise ServiceTimeout("a scan of the state bucket stalled") from e
            if consumers.is_status(msg):
                await consumers.answer_flow_control(self.nc, msg)
                continue
            d = consumers.delivery(msg.reply)
            if d is None or d.consumer_seq != expected:
                raise ServiceUnavailable("a scan of the state bucket missed messages; retry")
            expected += 1
            out.append(Stored(msg.subject[len(self.prefix):], d.stream_seq, msg.data,
                              msg.headers or {}, d.timestamp))
            pending = d.pending
        return out

    async def last_sequence(self) -> int:
        info = await self.nc.jetstream().stream_info(self.stream)
        return int(info.state.last_seq)

    async def wait_ready(self, timeout_s: float) -> None:
        """Retry ``ensure`` until JetStream answers (it may still be starting)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await self.ensure()
                return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)


def _api_error(err: _ApiError, item: str) -> QuantopsError:
    if err.err_code == _WRONG_LAST_SEQUENCE:
        current = int(err.description.rpartition(":")[2].strip() or 0)
        return RevisionConflict(f"{item} changed: its revision is {current}",
                                details={"current_revision": current})
    if err.err_code == _WRONG_LAST_SEQUENCE_IN_FLIGHT:
        return RevisionConflict(f"{item} is being changed by another write; read it again",
                                details={})
    if err.err_code == _EXPECTED_LAST_NOT_READY:
        return ServiceUnavailable(f"the state bucket's new leader cannot check the revision "
                                  f"of {item} yet; nothing was written, retry",
                                  details={"retry_after_s": 1.0})
    if err.err_code == _TOO_LARGE:
        return PayloadTooLarge(f"value of {item} exceeds the server's message size",
                               details={"reason": err.description})
    return QuantopsError(f"JetStream refused the write of {item}: {err.description}",
                         details={"err_code": err.err_code})
