"""A queue bounded in bytes, for relaying a NATS subscription to a slower reader.

A count bound is no bound when messages may be a megabyte each (10,000 of them were 10 GB).
When a new message does not fit, the oldest ones go: a reader that cannot keep up loses
history, never the process, and NATS delivery is never blocked. ``dropped`` counts what was
lost so the reader can say so.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class ByteQueue(Generic[T]):
    """Args:
        max_bytes: the most bytes held at once (one item larger than this is still taken,
            alone).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.dropped = 0
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def put_nowait(self, item: T, size: int) -> None:
        while self._items and self._bytes + size > self.max_bytes:
            _, old = self._items.popleft()
            self._bytes -= old
            self.dropped += 1
        self._items.append((item, size))
        self._bytes += size
        self._ready.set()

    async def get(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item, size = self._items.popleft()
        self._bytes -= size
        return item
