"""Event streams (Server-Sent Events) a principal may hold open at once.

Each stream costs a NATS subscription and a relay buffer for as long as the client keeps the
connection; without a cap one key could open thousands. Over the cap a new stream is refused
with 429 (``rate_limited``, ``Retry-After``) before it starts; a stream's slot is given back
when it ends, however it ends. The cap is counted twice: by this replica (always, in memory)
and across every replica through leases in NATS (``streamleases``), so N replicas do not allow
N times the cap; when the lease bucket cannot be reached the replica's own count still holds.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, TypeVar

from litestar import Request
from litestar.response import ServerSentEventMessage

from services.gateway.auth.guard import principal_of
from services.gateway.streamleases import StreamLeases
from shared.errors import RateLimited

T = TypeVar("T")

#: The first event of every stream, sent once its subscription is live: a client that waits for
#: it misses nothing published after. A named event, so an EventSource's ``onmessage`` never
#: sees it (a comment would: Litestar adds an empty data line to it).
READY: Final = ServerSentEventMessage(event="ready", data="")


class StreamSlots:
    """Args:
        max_per_principal: streams one principal (user name) may hold open at once.
    """

    def __init__(self, max_per_principal: int, leases: StreamLeases | None = None) -> None:
        self.max_per_principal = max_per_principal
        self.leases = leases
        self._open: dict[str, int] = {}

    async def acquire(self, who: str) -> Callable[[], None]:
        """A slot on this replica and a lease across replicas (``RateLimited`` if either is
        spent); returns the function that gives both back, once however often it is called."""
        give_back = self.take(who)
        try:
            release = await self.leases.take(who, self.max_per_principal) if self.leases else None
        except BaseException:
            give_back()
            raise
        if release is None:
            return give_back

        def both() -> None:
            if not released:
                released.append(True)
                give_back()
                release()

        released: list[bool] = []
        return both

    async def close(self) -> None:
        if self.leases is not None:
            await self.leases.close()

    def open_count(self, who: str) -> int:
        return self._open.get(who, 0)

    def take(self, who: str) -> Callable[[], None]:
        """Take a slot (or raise ``RateLimited``); returns the function that gives it back."""
        count = self._open.get(who, 0)
        if count >= self.max_per_principal:
            raise RateLimited(
                f"{who} already holds {count} event streams; close one first",
                details={"open_streams": count, "max_streams": self.max_per_principal,
                         "retry_after_s": 5})
        self._open[who] = count + 1
        released = False

        def give_back() -> None:
            nonlocal released
            if not released:
                released = True
                left = self._open.get(who, 1) - 1
                if left > 0:
                    self._open[who] = left
                else:
                    self._open.pop(who, None)

        return give_back


def slots_of(request: Request[Any, Any, Any]) -> StreamSlots:
    return request.app.state.streams  # type: ignore[no-any-return]


async def limited(request: Request[Any, Any, Any], events: AsyncIterator[T]
                  ) -> AsyncIterator[T]:
    """``events`` counted against the caller's stream slots (raises ``RateLimited`` now if none
    is free; the slot is given back when the stream ends or is closed)."""
    give_back = await slots_of(request).acquire(principal_of(request).name)

    async def relay() -> AsyncIterator[T]:
        try:
            async for event in events:
                yield event
        finally:
            give_back()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    stream = relay()
    # A stream the server never starts (the client left first) has no ``finally`` to run.
    weakref.finalize(stream, give_back)
    return stream
