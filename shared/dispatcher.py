"""A served subject's messages handled concurrently, at most ``max_in_flight`` at once, the rest
waiting in arrival order in a backlog bounded in messages and in bytes.

Called from the NATS client's read loop (``FastClient.deliver_directly``), so it never waits:
a message starts a task when there is room, joins the backlog when there is not, and is
refused when the backlog is full (the client reports a slow consumer; the requester times out
and may retry). The bytes bound is what keeps a flood of large requests from taking the
process's memory (nats-py's own subscription queue has the same two bounds). A task that
finishes takes the next waiting message itself, so a saturated subject costs no task creation
per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

M = TypeVar("M")
log = logging.getLogger(__name__)


class Dispatcher(Generic[M]):
    def __init__(self, handle: Callable[[M], Awaitable[None]], *, max_in_flight: int,
                 max_backlog: int, max_backlog_bytes: int, size: Callable[[M], int],
                 tasks: set[asyncio.Task[None]]) -> None:
        """``handle`` answers its own errors (what escapes it is logged); ``size`` is what a
        message weighs against ``max_backlog_bytes``; ``tasks`` is the owner's set of running
        tasks, which it waits for on close."""
        self._handle = handle
        self._max_in_flight = max_in_flight
        self._max_backlog = max_backlog
        self._max_backlog_bytes = max_backlog_bytes
        self._size = size
        self._tasks = tasks
        self._backlog: deque[M] = deque()
        self.in_flight = 0
        self.waiting_bytes = 0

    def __call__(self, message: M) -> bool:
        """Take ``message``: False when there is no room for it, even to wait."""
        if self.in_flight < self._max_in_flight:
            self.in_flight += 1
            self._tasks.add(asyncio.create_task(self._run(message)))
            return True
        size = self._size(message)
        if (len(self._backlog) >= self._max_backlog
                or self.waiting_bytes + size > self._max_backlog_bytes):
            return False
        self._backlog.append(message)
        self.waiting_bytes += size
        return True

    @property
    def waiting(self) -> int:
        return len(self._backlog)

    async def _run(self, message: M) -> None:
        # Bookkeeping here rather than in a done-callback: one trip less through the loop.
        try:
            while True:
                try:
                    await self._handle(message)
                except Exception:  # a bug costs one message, never the messages waiting
                    log.exception("message handler failed")
                if not self._backlog:
                    return
                message = self._backlog.popleft()
                self.waiting_bytes -= self._size(message)
        finally:
            self.in_flight -= 1
            self._tasks.discard(asyncio.current_task())
