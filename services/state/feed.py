"""Each replica's ordered, gap-checked feed of the state bucket, and how fresh it is.

The feed starts with the latest message of every key, then every change in stream order. It
knows ``applied``, the highest revision (stream sequence) it has handed to the index, such that
the index reflects every message up to it: after the initial catch-up (``ready``), messages
arrive in stream order and a gap in consumer sequences recreates the consumer from
``applied + 1``, so no change is skipped. It is ``live`` while messages or idle heartbeats keep
arriving; a silent consumer (server restart, lost subscription) is recreated by a watchdog.

The cache may answer a read for a caller who has seen revision ``r`` only if
``fresh(r)``: ready, live, and ``applied >= r``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from services.state import consumers
from services.state.store import KvStore, Stored
from shared.logs import swallowed

log = logging.getLogger(__name__)


class Feed:
    """Args:
    store: the bucket to follow.
    apply: called with every stored message, in stream order, from the event loop.
    clear: called before the feed starts over from the latest message of every key.
    heartbeat_s: the consumer's idle heartbeat; three missed ones mean it is lost.
    """

    def __init__(self, store: KvStore, apply: Callable[[Stored], None],
                 clear: Callable[[], None], *, heartbeat_s: float = 1.0) -> None:
        self.store = store
        self.apply = apply
        self.clear = clear
        self.heartbeat_s = heartbeat_s
        self.applied = 0
        self.ready = False
        self.live_at = 0.0
        self.resets = 0
        self._catch_up_to = 0
        self._cseq = 0
        self._sub: Subscription | None = None
        self._consumer = ""
        self._watchdog: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._generation = 0
        self._resetting: asyncio.Task[None] | None = None

    def live(self) -> bool:
        return time.monotonic() - self.live_at < 3 * self.heartbeat_s

    def fresh(self, min_revision: int) -> bool:
        return self.ready and self.applied >= min_revision and self.live()

    async def wait_fresh(self, revision: int, timeout_s: float) -> bool:
        """Wait until ``fresh(revision)``, at most ``timeout_s``; whether it is."""
        if self.fresh(revision) or not self.ready:
            return self.fresh(revision)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, waiter))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout_s)
        return self.fresh(revision)

    def _wake(self) -> None:
        still = []
        for revision, waiter in self._waiters:
            if waiter.done():
                continue
            if revision <= self.applied:
                waiter.set_result(None)
            else:
                still.append((revision, waiter))
        self._waiters = still

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self.ready

    async def start(self) -> None:
        await self._subscribe(initial=True)
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        for task in (self._watchdog, self._resetting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._drop()

    async def _subscribe(self, *, initial: bool) -> None:
        async with self._lock:
            await self._drop()
            nc = self.store.nc
            # Read the stream's end first: once the consumer has nothing pending, everything up
            # to it was delivered or no longer exists, so it is safe to count as applied.
            catch_up_to = await self.store.last_sequence() if initial else 0
            if initial:
                self.clear()
                self.applied = 0
            inbox = nc.new_inbox()
            self._cseq = 0
            self._catch_up_to = catch_up_to
            self._generation += 1
            self._sub = await nc.subscribe(
                inbox, cb=functools.partial(self._on_message, self._generation),
                pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
            policy = "last_per_subject" if initial else "by_start_sequence"
            config = consumers.consumer_config(
                inbox, f"{self.store.prefix}>", deliver_policy=policy,
                start_seq=self.applied + 1, heartbeat_s=self.heartbeat_s)
            info = await consumers.create(nc, self.store.stream, config,
                                          timeout_s=self.store.timeout_s)
            self._consumer = info["name"]
            self.live_at = time.monotonic()  # the server just answered for this consumer
            if int(info.get("num_pending", 0)) == 0:
                self._caught_up(catch_up_to)

    async def _drop(self) -> None:
        sub, name = self._sub, self._consumer
        self._sub, self._consumer = None, ""
        if sub is not None:
            with swallowed(log, "unsubscribing the stale feed", level=logging.DEBUG):
                await sub.unsubscribe()
        if name:
            await consumers.delete(self.store.nc, self.store.stream, name)

    def _caught_up(self, revision: int) -> None:
        self.applied = max(self.applied, revision)
        if self._waiters:
            self._wake()
        if not self.ready:
            log.info("state cache caught up", extra={"revision": self.applied})
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
        prefix_len = len(self.store.prefix)
        try:
            self.apply(Stored(msg.subject[prefix_len:], d.stream_seq, msg.data,
                              msg.headers or {}, d.timestamp))
        except Exception:  # one undecodable message must not stop the feed
            log.exception("could not apply a state change", extra={"revision": d.stream_seq})
        self.applied = max(self.applied, d.stream_seq)
        self.live_at = time.monotonic()
        if self._waiters:
            self._wake()
        if d.pending == 0:
            self._caught_up(self._catch_up_to)

    async def _on_status(self, msg: Msg) -> None:
        headers: dict[str, Any] = msg.headers or {}
        if msg.reply:  # flow control request
            await consumers.answer_flow_control(self.store.nc, msg)
            return
        last = headers.get(consumers.LAST_CONSUMER)
        if last is not None and int(last) != self._cseq:
            self._schedule_reset("heartbeat reports missed messages")
        else:
            self.live_at = time.monotonic()

    def _schedule_reset(self, why: str) -> None:
        self.live_at = 0.0  # stop serving cached reads at once
        self._generation += 1  # and ignore whatever the broken consumer still sends
        if self._resetting is None or self._resetting.done():
            log.warning("recreating the state feed", extra={"reason": why})
            self._resetting = asyncio.get_running_loop().create_task(self._reset())

    async def _reset(self) -> None:
        try:
            self.resets += 1
            # Before the initial catch-up ended, the index is not a prefix of the stream:
            # start over with the latest message per key.
            await self._subscribe(initial=not self.ready)
        except Exception as e:
            log.warning("could not recreate the state feed: %s", e)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            busy = self._resetting is not None and not self._resetting.done()
            if not self.live() and not busy and not self._lock.locked():
                log.warning("state feed silent; recreating it")
                await self._reset()
