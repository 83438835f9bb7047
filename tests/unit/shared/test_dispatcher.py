"""``shared.dispatcher.Dispatcher``: at most N handlers at once, the rest waiting in order, a
full backlog refusing."""

from __future__ import annotations

import asyncio

import pytest

from shared.dispatcher import Dispatcher


async def test_at_most_n_run_the_rest_wait_in_order_and_all_are_handled() -> None:
    release = asyncio.Event()
    started: list[int] = []
    done: list[int] = []

    async def handle(n: int) -> None:
        started.append(n)
        await release.wait()
        done.append(n)

    tasks: set[asyncio.Task[None]] = set()
    dispatch = Dispatcher(handle, max_in_flight=2, max_backlog=3, max_backlog_bytes=100,
                          size=lambda n: 1, tasks=tasks)
    assert all(dispatch(n) for n in range(5))
    assert not dispatch(5)  # two running, three waiting: no room
    await asyncio.sleep(0)  # let the two tasks start
    assert started == [0, 1] and dispatch.in_flight == 2 and dispatch.waiting == 3
    assert len(tasks) == 2  # the waiting ones cost no task
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(done) == [0, 1, 2, 3, 4] and started[2:] == [2, 3, 4]
    assert dispatch.in_flight == 0 and dispatch.waiting == 0 and not tasks


async def test_a_handler_that_raises_is_logged_and_the_waiting_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    handled: list[int] = []

    async def handle(n: int) -> None:
        handled.append(n)
        if n == 1:
            raise RuntimeError("boom")

    tasks: set[asyncio.Task[None]] = set()
    dispatch = Dispatcher(handle, max_in_flight=1, max_backlog=5, max_backlog_bytes=100,
                          size=lambda n: 1, tasks=tasks)
    assert all(dispatch(n) for n in (1, 2, 3))
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert handled == [1, 2, 3] and dispatch.in_flight == 0
    assert "message handler failed" in caplog.text


async def test_the_backlog_is_bounded_in_bytes_too() -> None:
    release = asyncio.Event()

    async def handle(data: bytes) -> None:
        await release.wait()

    tasks: set[asyncio.Task[None]] = set()
    dispatch = Dispatcher(handle, max_in_flight=1, max_backlog=100, max_backlog_bytes=10,
                          size=len, tasks=tasks)
    assert dispatch(b"x" * 1000)  # running: not in the backlog
    assert dispatch(b"y" * 6) and not dispatch(b"z" * 6) and dispatch(b"w" * 4)
    assert dispatch.waiting == 2 and dispatch.waiting_bytes == 10
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert dispatch.waiting_bytes == 0
