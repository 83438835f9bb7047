"""The gateway's uvicorn protocol on a real socket: responses gathered into one write arrive
whole, in order, and before a closing connection ends; large bodies and streams still flow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from services.gateway.http_server import GATHER_MAX_BYTES, GatheringHttpToolsProtocol, Server
from shared.natsserver import free_port
from tests.support import eventually

BIG = bytes(range(256)) * (4 * GATHER_MAX_BYTES // 256 + 7)  # several writes' worth, odd size


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/big":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(BIG)).encode())]})
        await send({"type": "http.response.body", "body": BIG})
        return
    if path == "/stream":  # many small chunks without a pause: a stream that never yields
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(2000):
            await send({"type": "http.response.body", "body": b"%05d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = path.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[int]:
    port = free_port()
    server = Server(uvicorn.Config(app, port=port, http=GatheringHttpToolsProtocol,
                                   log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        def started() -> bool:
            assert not task.done(), "server stopped during start-up"
            return server.started

        await eventually(started, interval_s=0.01, what="uvicorn started")
        yield port
    finally:
        server.should_exit = True
        await task


async def exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    return data


def bodies(data: bytes) -> list[bytes]:
    """Bodies of consecutive Content-Length responses."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        out.append(rest[:length])
        data = rest[length:]
    return out


@pytest.mark.asyncio
async def test_pipelined_responses_arrive_whole_and_in_order_before_the_close() -> None:
    requests = b"".join(b"GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
    requests += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with serving() as port:
        data = await exchange(port, requests)
    assert bodies(data) == [b"/r%d" % i for i in range(20)] + [b"/last"]


@pytest.mark.asyncio
async def test_a_body_larger_than_the_gathering_arrives_intact() -> None:
    async with serving() as port:
        data = await exchange(
            port, b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert bodies(data) == [b"/small", BIG]


@pytest.mark.asyncio
async def test_a_stream_of_small_chunks_arrives_complete() -> None:
    async with serving() as port:
        data = await exchange(port, b"GET /stream HTTP/1.1\r\nHost: x\r\n"
                                    b"Connection: close\r\n\r\n")
    head, _, chunked = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    text, rest = b"", chunked
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        text, rest = text + rest[:size], rest[size + 2:]
    assert text == b"".join(b"%05d\n" % i for i in range(2000))
