"""One replica's ordered feed of the auth bucket, and how current it provably is.

An ordered push consumer delivers the latest message of every key, then every change in stream
order, and each goes to ``apply`` (a delete or purge marker as ``None``). ``applied`` is the
highest stream sequence handed over. After a gap, or two missed idle heartbeats, nats-py
recreates the consumer from the next sequence; a consumer the server no longer knows (a
restarted server, a new stream leader) is recreated by the feed itself as soon as a check
finds it gone. Either way it resumes after ``applied``, so no change is skipped.

Freshness is checked, not assumed. Every ``check_interval_s`` the feed asks the server for the
consumer's state; when nothing is pending, every change committed before the question was sent
has been delivered, and once everything delivered is applied, ``synced_at`` moves to the moment
the question was sent. ``staleness_s()`` is the time since: normally at most the check interval
plus a round trip; it grows only while the server or the consumer cannot be reached, and the
authenticator refuses credentials once it passes ``QUANTOPS_GATEWAY_AUTH_MAX_STALENESS_S``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE

from shared.logs import swallowed

log = logging.getLogger(__name__)

#: Unanswered freshness questions kept; older ones are superseded by newer ones anyway.
_MAX_TARGETS = 64
#: Checks in a row that find the consumer gone before the feed recreates it (one may only
#: catch nats-py recreating it).
_GONE_CHECKS = 2
_CHECK_TIMEOUT_S = 1.0


class KvFeed:
    """Args:
    js: JetStream context of the replica's connection.
    stream: the bucket's stream (``KV_<bucket>``).
    prefix: the bucket's subject prefix (``$KV.<bucket>.``).
    apply: called with ``(key, value or None)`` for every message, in stream order.
    check_interval_s: how often freshness is confirmed with the server.
    heartbeat_s: the consumer's idle heartbeat; two missed ones recreate it.
    """

    def __init__(self, js: JetStreamContext, stream: str, prefix: str,
                 apply: Callable[[str, bytes | None], None], *, check_interval_s: float = 0.25,
                 heartbeat_s: float = 1.0) -> None:
        self.js = js
        self.stream = stream
        self.prefix = prefix
        self.apply = apply
        self.check_interval_s = check_interval_s
        self.heartbeat_s = heartbeat_s
        self.applied = 0
        self.synced_at = -math.inf  # monotonic
        self._sub: JetStreamContext.PushSubscription | None = None
        self._checker: asyncio.Task[None] | None = None
        self._targets: collections.deque[tuple[int, float]] = collections.deque(
            maxlen=_MAX_TARGETS)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._synced = asyncio.Event()
        self._gone = 0

    def staleness_s(self) -> float:
        return time.monotonic() - self.synced_at

    async def start(self, *, timeout_s: float) -> bool:
        """Subscribe and wait until the bucket's current contents are applied; whether they
        were within ``timeout_s``."""
        await self._subscribe(api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT))
        self._checker = asyncio.create_task(self._check_loop())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout_s)
        return self._synced.is_set()

    async def _subscribe(self, config: api.ConsumerConfig) -> None:
        self._sub = await self.js.subscribe(
            f"{self.prefix}>", stream=self.stream, cb=self._on_msg, config=config,
            ordered_consumer=True, idle_heartbeat=self.heartbeat_s, inactive_threshold=60.0)

    async def _resume(self) -> None:
        """A new consumer from the first change not yet applied."""
        old, self._sub = self._sub, None
        if old is not None:
            with swallowed(log, "unsubscribing the stale auth feed", level=logging.DEBUG):
                await old.unsubscribe()
        log.info("auth feed resumes", extra={"from_revision": self.applied + 1})
        await self._subscribe(api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.applied + 1))

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._sub is not None:
            # Unsubscribed before the connection drains: an open watch can stall nc.drain().
            with swallowed(log, "unsubscribing the auth feed", level=logging.DEBUG):
                await self._sub.unsubscribe()
        for _, waiter in self._waiters:
            waiter.cancel()

    async def wait_applied(self, revision: int, timeout_s: float) -> bool:
        """Wait until the message at ``revision`` (or a later one) is applied."""
        if self.applied >= revision:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, waiter))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout_s)  # cancelled on timeout: dropped below
        return self.applied >= revision

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        # A purge may come with a TTL; nats-server 2.11+ marks expiries with a reason header.
        gone = headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in headers
        try:
            self.apply(msg.subject[len(self.prefix):], None if gone else msg.data)
        except Exception:  # one unreadable entry must not stop the feed
            log.exception("auth bucket entry not applied", extra={"subject": msg.subject})
        self.applied = max(self.applied, msg.metadata.sequence.stream)
        self._credit()

    async def _check_loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_interval_s)

    async def check(self) -> None:
        """Ask the server what the consumer has delivered; credit the answer once applied."""
        if self._sub is None:
            return
        asked = time.monotonic()
        try:
            # Bounded: a slow answer must not hold up the next question for long.
            info = await asyncio.wait_for(self._sub.consumer_info(), _CHECK_TIMEOUT_S)
        except NotFoundError:
            self._gone += 1
            if self._gone >= _GONE_CHECKS:
                self._gone = 0
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    await self._resume()
            return
        except (nats.errors.Error, TimeoutError) as e:
            # The server is away: staleness grows until it answers again.
            log.debug("auth feed check failed: %r", e)
            return
        self._gone = 0
        if info.num_pending or info.delivered is None:
            return  # still catching up: a later check will find it done
        self._targets.append((info.delivered.stream_seq, asked))
        self._credit()

    def _credit(self) -> None:
        while self._targets and self._targets[0][0] <= self.applied:
            self.synced_at = max(self.synced_at, self._targets.popleft()[1])
            self._synced.set()
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
