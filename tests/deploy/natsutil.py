"""NATS helpers of the deploy tests."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from shared import natsauth


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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        try:
            return await nc.request(subject, data, timeout=2)
        except NoRespondersError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def receive_after(sub: object, send: object, *, within_s: float = 3.0) -> Msg:
    """Call ``send()`` until ``sub`` receives a message (the same fresh-server interest race
    as ``request_served``: a message published before interest is visible is dropped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        await send()  # type: ignore[operator]
        try:
            return await sub.next_msg(timeout=0.25)  # type: ignore[attr-defined, no-any-return]
        except TimeoutError:
            if loop.time() > deadline:
                raise
