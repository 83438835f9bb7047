"""NATS helpers of the deploy tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError

from shared import natsauth
from tests.support import eventually


async def connect_as(url: str, user: str, password: str, **options: Any) -> NATS:
    """A connection with ``user``'s credentials and its own inbox prefix, as ``connect_nats``
    makes it: with nats-py's default ``_INBOX`` its requests could get no reply."""
    return await nats.connect(url, user=user, password=password,
                              inbox_prefix=natsauth.inbox_prefix(user), **options)


async def request_served(nc: NATS, subject: str, data: bytes, *, within_s: float = 3.0) -> Msg:
    """A request to a subject another connection has just subscribed to (and flushed).

    On a freshly started nats-server about one such first request in 40 still gets "no
    responders" (seen with and without authorization, so not a permissions effect): the
    subscriber's interest is not yet visible to the other connection. Retry only that.
    """
    async def served() -> Msg | None:
        try:
            return await nc.request(subject, data, timeout=2)
        except NoRespondersError:
            return None

    return await eventually(served, timeout_s=within_s, interval_s=0.05,
                            what=f"a responder to {subject}")


async def receive_after(sub: Subscription, send: Callable[[], Awaitable[object]], *,
                        within_s: float = 3.0) -> Msg:
    """Call ``send()`` until ``sub`` receives a message (the same fresh-server interest race
    as ``request_served``: a message published before interest is visible is dropped)."""
    async def received() -> Msg | None:
        await send()
        try:
            return await sub.next_msg(timeout=0.25)
        except TimeoutError:
            return None

    # next_msg's own timeout paces the retries.
    return await eventually(received, timeout_s=within_s, interval_s=0,
                            what="a message on the subscription")
