"""One replica's ordered, gap-checked feed of a KV bucket, and how current it provably is.

The feed starts with the latest message of every key, then every change in stream order, and
hands each to ``apply``. ``applied`` is the highest revision (stream sequence) handed over, such
that everything up to it has been applied: after the initial catch-up (``ready``) messages
arrive in stream order, and a gap in consumer sequences recreates the consumer from
``applied + 1``, so no change is skipped. It is ``live`` while messages or idle heartbeats keep
arriving; a silent consumer (server restart, lost subscription, new stream leader) is recreated
by a watchdog.

Two ways to ask how current it is, for two kinds of reader:

- ``fresh(r)``: ready, live and ``applied >= r``. A caller who has seen revision ``r`` may be
  answered from what the feed applied (the state service's cache).
- ``staleness_s()``: the time since a moment at which everything committed was provably
  applied. When ``check_interval_s`` is set, the feed asks the server for its consumer's state
  that often; when nothing is pending, every change committed before the question was sent has
  been delivered, and once everything delivered is applied, ``synced_at`` moves to the moment
  the question was sent. It grows only while the server or the consumer cannot be reached (the
  gateway refuses credentials once it passes a bound).

The consumer is an ephemeral push consumer spoken directly (``shared.push_consumers``), because
the feed needs each message's headers and stream sequence and a way to tell it is current,
which nats-py's KV watch does not give.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE

from shared import push_consumers as consumers
from shared.logs import swallowed

log = logging.getLogger(__name__)

#: Unanswered freshness questions kept; older ones are superseded by newer ones anyway.
_MAX_TARGETS: Final = 64
#: JetStream's "consumer not found".
_CONSUMER_NOT_FOUND: Final = 10014


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One stored message of the bucket: its key (the subject after the bucket's prefix)."""

    key: str
    revision: int
    data: bytes
    headers: Mapping[str, str]
    timestamp: float

    @property
    def removed(self) -> bool:
        """A delete or purge marker, or (nats-server 2.11+) a marker left by an expiry."""
        return (self.headers.get(KV_OP) in (KV_DEL, KV_PURGE)
                or KV_MARKER_REASON in self.headers)


#: What ``apply`` receives: ``KvEntry``, or a subclass that adds its bucket's own readings.
E = TypeVar("E", bound=KvEntry)


class KvFeed(Generic[E]):
    """Args:
    nc: the replica's connection.
    stream: the bucket's stream (``KV_<bucket>``).
    prefix: the bucket's subject prefix (``$KV.<bucket>.``).
    apply: called with every stored message, in stream order, from the event loop.
    entry: the class ``apply`` receives (``KvEntry`` or a subclass), one per message.
    clear: called before the feed starts over from the latest message of every key.
    heartbeat_s: the consumer's idle heartbeat; three missed ones mean it is lost.
    check_interval_s: how often freshness is confirmed with the server (``staleness_s``);
        None: never, and ``staleness_s`` only moves at catch-up.
    timeout_s: how long one JetStream request may take.
    """

    def __init__(self, nc: NATS, stream: str, prefix: str, apply: Callable[[E], None], *,
                 entry: type[E], clear: Callable[[], None] = lambda: None,
                 heartbeat_s: float = 1.0, check_interval_s: float | None = None,
                 timeout_s: float = 5.0) -> None:
        self.nc = nc
        self.stream = stream
        self.prefix = prefix
        self.apply = apply
        self.entry = entry
        self.clear = clear
        self.heartbeat_s = heartbeat_s
        self.check_interval_s = check_interval_s
        self.timeout_s = timeout_s
        self.applied = 0
        self.ready = False
        self.live_at = 0.0
        self.synced_at = -math.inf  # monotonic
        self.resets = 0
        self._catch_up_to = (0, -math.inf)  # (revision, when it was read)
        self._cseq = 0
        self._sub: Subscription | None = None
        self._consumer = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._targets: collections.deque[tuple[int, float]] = collections.deque(
            maxlen=_MAX_TARGETS)
        self._generation = 0
        self._resetting: asyncio.Task[None] | None = None

    # -- how current -----------------------------------------------------------------------

    def live(self) -> bool:
        return time.monotonic() - self.live_at < 3 * self.heartbeat_s

    def fresh(self, min_revision: int) -> bool:
        return self.ready and self.applied >= min_revision and self.live()

    def staleness_s(self) -> float:
        return time.monotonic() - self.synced_at

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self.ready

    async def wait_applied(self, revision: int, timeout_s: float) -> bool:
        """Wait until the message at ``revision`` (or a later one) is applied."""
        if self.applied >= revision:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, waiter))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout_s)  # cancelled on timeout: dropped later
        return self.applied >= revision

    async def wait_fresh(self, revision: int, timeout_s: float) -> bool:
        """Wait until ``fresh(revision)``, at most ``timeout_s``; whether it is."""
        if self.ready and not self.fresh(revision):
            await self.wait_applied(revision, timeout_s)
        return self.fresh(revision)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._subscribe(initial=True)
        self._tasks.append(asyncio.create_task(self._watch()))
        if self.check_interval_s is not None:
            self._tasks.append(asyncio.create_task(self._check_loop(self.check_interval_s)))

    async def stop(self) -> None:
        for task in (*self._tasks, self._resetting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        await self._drop()
        for _, waiter in self._waiters:
            waiter.cancel()

    async def _subscribe(self, *, initial: bool) -> None:
        async with self._lock:
            await self._drop()
            if initial:
                # Read the stream's end first: once the consumer has nothing pending,
                # everything up to it was delivered or no longer exists, so it is safe to count
                # as applied, and as synced at the moment it was asked.
                asked = time.monotonic()
                self._catch_up_to = (await self._last_sequence(), asked)
                self.clear()
                self.applied = 0
            else:
                self._catch_up_to = (0, -math.inf)
            inbox = self.nc.new_inbox()
            self._cseq = 0
            self._generation += 1
            self._sub = await self.nc.subscribe(
                inbox, cb=functools.partial(self._on_message, self._generation),
                pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
            policy = "last_per_subject" if initial else "by_start_sequence"
            config = consumers.consumer_config(
                inbox, f"{self.prefix}>", deliver_policy=policy,
                start_seq=self.applied + 1, heartbeat_s=self.heartbeat_s)
            info = await consumers.create(self.nc, self.stream, config, timeout_s=self.timeout_s)
            self._consumer = info["name"]
            self.live_at = time.monotonic()  # the server just answered for this consumer
            if int(info.get("num_pending", 0)) == 0:
                self._caught_up()

    async def _last_sequence(self) -> int:
        reply = await self.nc.request(f"$JS.API.STREAM.INFO.{self.stream}", b"",
                                      timeout=self.timeout_s)
        info: dict[str, Any] = json.loads(reply.data)
        if "error" in info:
            raise consumers.refused(self.stream, info["error"])
        return int(info["state"]["last_seq"])

    async def _drop(self) -> None:
        sub, name = self._sub, self._consumer
        self._sub, self._consumer = None, ""
        if sub is not None:
            with swallowed(log, "unsubscribing a stale feed", level=logging.DEBUG):
                await sub.unsubscribe()
        if name:
            await consumers.delete(self.nc, self.stream, name)

    # -- delivery ----------------------------------------------------------------------------

    def _caught_up(self) -> None:
        revision, asked = self._catch_up_to
        self.applied = max(self.applied, revision)
        self.synced_at = max(self.synced_at, asked)
        self._credit()
        if not self.ready:
            log.info("feed caught up", extra={"stream": self.stream, "revision": self.applied})
        self.ready = True
        self._ready.set()
        self.live_at = time.monotonic()

    async def _on_message(self, generation: int, msg: Msg) -> None:
        if generation != self._generation:
            return  # still in flight from a consumer that was replaced
        if msg.reply and msg.reply.startswith("$JS.ACK."):
            self._on_delivery(msg)
        elif consumers.is_status(msg):
            await self._on_status(msg)

    def _on_delivery(self, msg: Msg) -> None:
        d = consumers.delivery(msg.reply)
        if d is None or d.consumer_seq != self._cseq + 1:
            self._schedule_reset("gap in the feed")
            return
        self._cseq = d.consumer_seq
        try:
            self.apply(self.entry(msg.subject[len(self.prefix):], d.stream_seq, msg.data,
                                  msg.headers or {}, d.timestamp))
        except Exception:  # one undecodable message must not stop the feed
            log.exception("could not apply a feed entry",
                          extra={"stream": self.stream, "revision": d.stream_seq})
        self.applied = max(self.applied, d.stream_seq)
        self.live_at = time.monotonic()
        self._credit()
        if d.pending == 0:
            self._caught_up()

    async def _on_status(self, msg: Msg) -> None:
        headers: dict[str, Any] = msg.headers or {}
        if msg.reply:  # flow control request
            await consumers.answer_flow_control(self.nc, msg)
            return
        last = headers.get(consumers.LAST_CONSUMER)
        if last is not None and int(last) != self._cseq:
            self._schedule_reset("heartbeat reports missed messages")
        else:
            self.live_at = time.monotonic()

    def _credit(self) -> None:
        """Settle freshness answers and revision waiters that ``applied`` now covers."""
        while self._targets and self._targets[0][0] <= self.applied:
            self.synced_at = max(self.synced_at, self._targets.popleft()[1])
        if self._waiters:
            still = []
            for revision, waiter in self._waiters:
                if waiter.done():
                    continue
                if revision <= self.applied:
                    waiter.set_result(None)
                else:
                    still.append((revision, waiter))
            self._waiters = still

    # -- keeping it current ------------------------------------------------------------------

    def _schedule_reset(self, why: str) -> None:
        self.live_at = 0.0  # stop serving cached reads at once
        self._generation += 1  # and ignore whatever the broken consumer still sends
        if self._resetting is None or self._resetting.done():
            log.warning("recreating a feed", extra={"stream": self.stream, "reason": why})
            self._resetting = asyncio.get_running_loop().create_task(self._reset())

    async def _reset(self) -> None:
        try:
            self.resets += 1
            # Before the initial catch-up ended, what was applied is not a prefix of the
            # stream: start over with the latest message per key.
            await self._subscribe(initial=not self.ready)
        except Exception as e:
            log.warning("could not recreate a feed: %s", e, extra={"stream": self.stream})

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            busy = self._resetting is not None and not self._resetting.done()
            if not self.live() and not busy and not self._lock.locked():
                log.warning("feed silent; recreating it", extra={"stream": self.stream})
                await self._reset()

    async def _check_loop(self, interval_s: float) -> None:
        while True:
            await self.check()
            await asyncio.sleep(interval_s)

    async def check(self) -> None:
        """Ask the server what the consumer has delivered; credit the answer once applied."""
        name = self._consumer
        if not name or not self.ready:
            return
        asked = time.monotonic()
        try:
            # Bounded: a slow answer must not hold up the next question for long.
            reply = await self.nc.request(f"$JS.API.CONSUMER.INFO.{self.stream}.{name}", b"",
                                          timeout=min(1.0, self.timeout_s))
        except Exception as e:
            log.debug("feed check failed: %r", e)
            return
        info: dict[str, Any] = json.loads(reply.data)
        error = info.get("error")
        if error is not None:
            if error.get("err_code") == _CONSUMER_NOT_FOUND and name == self._consumer:
                self._schedule_reset("the server no longer knows the consumer")
            return
        delivered = info.get("delivered") or {}
        if info.get("num_pending") or "stream_seq" not in delivered:
            return  # still catching up: a later check will find it done
        self._targets.append((int(delivered["stream_seq"]), asked))
        self._credit()
