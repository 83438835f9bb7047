"""The byte-bounded relay queue of event streams (issue 14, case 7)."""

from __future__ import annotations

import asyncio

from shared.bytequeue import ByteQueue


async def test_oldest_items_go_when_bytes_run_out() -> None:
    q: ByteQueue[str] = ByteQueue(max_bytes=10)
    for n in range(5):
        q.put_nowait(f"m{n}", 4)
    assert q.size_bytes <= 10 and q.dropped == 3
    assert [await q.get(), await q.get()] == ["m3", "m4"]
    assert q.size_bytes == 0


async def test_a_megabyte_flood_stays_within_the_bound() -> None:
    q: ByteQueue[bytes] = ByteQueue(max_bytes=4 << 20)
    blob = b"x" * (1 << 20)
    for _ in range(10_000):  # 10 GB if counted in messages
        q.put_nowait(blob, len(blob))
    assert q.size_bytes <= 4 << 20 and q.dropped == 10_000 - 4


async def test_get_waits_for_a_put() -> None:
    q: ByteQueue[int] = ByteQueue(max_bytes=100)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.put_nowait(7, 1)
    assert await asyncio.wait_for(getter, 1) == 7
