"""One pull loop per priority consumer, with explicit credit.

nats-py's ``fetch`` blocks until a batch is complete or times out; an executor needs messages
as they arrive (latency) and a say in how many it takes (concurrency, priorities). So each
puller keeps one pull request outstanding on its durable consumer, sized by the dispatcher's
``want``; messages land in the dispatcher the moment they arrive, and a new request goes out
when the previous one is filled or expires. Several executor processes pulling from the same
durable consumer split the work: the server hands each message to one request only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.contracts.executor import Priority
from shared.logs import swallowed

log = logging.getLogger(__name__)

_STATUS = "Status"
_ACK_PREFIX = "$JS.ACK."


class Puller:
    """Pull requests on ``consumer`` of ``stream``; deliveries go to ``on_message``.

    Args:
        want: how many messages the dispatcher would take now (0: wait for ``wake``).
        on_message: called for every delivered task message.
        on_empty: called when the server says nothing more is waiting.
        expires_s: lifetime of a lingering request; also bounds how long a request lost in a
            reconnect stalls this puller.
    """

    def __init__(
        self, nc: NATS, *, stream: str, consumer: str, priority: Priority,
        want: Callable[[Priority], int], on_message: Callable[[Priority, Msg], None],
        on_empty: Callable[[Priority], None], expires_s: float = 2.0,
    ) -> None:
        self.nc = nc
        self.priority = priority
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.want = want
        self.on_message = on_message
        self.on_empty = on_empty
        self.expires_s = expires_s
        self.outstanding = 0
        self._done = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._sub: Subscription | None = None
        self._inbox = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._inbox, cb=self._on_delivery,
                                            pending_msgs_limit=1_000_000)
        self._task = asyncio.create_task(self._run(), name=f"puller-{self.priority}")

    def wake(self) -> None:
        if self.outstanding <= 0:
            self._wake.set()

    async def _run(self) -> None:
        probe = True  # the first request asks without waiting: learn at once what is queued
        while not self._stopping:
            n = self.want(self.priority)
            if n <= 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._request(n, probe)
            probe = False

    async def _request(self, n: int, probe: bool) -> None:
        req: dict[str, object] = {"batch": n}
        if probe:
            req["no_wait"] = True
        else:
            req["expires"] = int(self.expires_s * 1e9)
        self.outstanding = n
        self._done.clear()
        try:
            await self.nc.publish(self.next_subject, json.dumps(req).encode(), reply=self._inbox)
            # A request lost with a connection never answers: give up on it after expiry.
            await asyncio.wait_for(self._done.wait(), self.expires_s + 1.0)
        except TimeoutError:
            pass
        except Exception as e:  # disconnected: the client reconnects by itself
            log.debug("pull request failed: %s", e)
            await asyncio.sleep(0.5)
        finally:
            self.outstanding = 0

    async def _on_delivery(self, msg: Msg) -> None:
        if msg.reply.startswith(_ACK_PREFIX):
            self.outstanding -= 1
            if self.outstanding <= 0:
                self._done.set()
            self.on_message(self.priority, msg)
            return
        status = (msg.headers or {}).get(_STATUS, "")
        if status == "100":  # idle heartbeat
            return
        if status in ("404", "408"):
            self.on_empty(self.priority)
        elif status:
            log.warning("pull request ended: %s %s", status,
                        (msg.headers or {}).get("Description", ""),
                        extra={"priority": str(self.priority)})
        self._done.set()

    async def stop(self) -> None:
        """Stop asking for messages, and withdraw the request still waiting on the server.

        Unsubscribing the inbox makes the server drop that request (it has no interest any
        more), so nothing is delivered to a process that is leaving; draining (unsubscribe,
        round trip, then the rest of the local queue) means a message the server sent before
        it saw the unsubscribe still reaches ``on_message``, which hands it back."""
        self._stopping = True
        self._wake.set()
        self._done.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sub is not None:
            with swallowed(log, "draining the pull subscription", level=logging.DEBUG):
                await self._sub.drain()  # type: ignore[no-untyped-call]  # nats-py: untyped
            self._sub = None


def ack_info(reply: str) -> tuple[int, float, int]:
    """(deliveries, stream timestamp in s, messages still pending) from a JetStream ack
    subject, in either layout: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.
    <pending>`` or the one with domain and account hash in front and a token at the end.
    (nats-py's ``msg.metadata`` builds datetimes and dataclasses: measurable per task.)"""
    t = reply.split(".")
    base = 2 if len(t) == 9 else 4
    return int(t[base + 2]), int(t[base + 5]) / 1e9, int(t[base + 6])
