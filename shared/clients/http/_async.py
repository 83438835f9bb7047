"""The asyncio transport: performs plans with an ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from typing import Any, TypeVar

import httpx

from shared.clients.http._base import Credentials, TransportBase
from shared.clients.http._calls import (
    Call,
    Download,
    Downloaded,
    First,
    Paged,
    Plan,
    Sse,
    Upload,
)
from shared.clients.http._io import Sink, achunks
from shared.clients.http._problems import error_from_response, transport_error
from shared.clients.http._sse import SseParser
from shared.errors import QuantopsError, ServiceTimeout

T = TypeVar("T")
Item = TypeVar("Item")
Page = TypeVar("Page")


class AsyncTransport(TransportBase):
    def __init__(self, http: httpx.AsyncClient, credentials: Credentials) -> None:
        super().__init__(credentials)
        self.http = http

    async def run(self, plan: Plan[T]) -> T:
        if not isinstance(plan, Generator):
            return await self._step(plan)  # type: ignore[no-any-return]
        value: Any = None
        error: QuantopsError | None = None
        while True:
            try:
                step = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value, error = await self._step(step), None
            except QuantopsError as e:  # the plan may clean up (abort an upload) and re-raise
                value, error = None, e

    def upload_body(self, upload: Upload) -> AsyncIterator[bytes]:
        return achunks(upload)

    async def _step(self, step: Call[Any] | Download | First[Any]) -> Any:
        if isinstance(step, Call):
            return await self.send(step)
        if isinstance(step, Download):
            return await self.download(step)
        return await self.first(step)

    async def _perform(self, call: Call[Any], *, stream: bool = False,
                       endless: bool = False) -> httpx.Response:
        request = self.build(call, self.http)
        if endless:  # an event feed: keep-alives every few seconds; ``first`` bounds a wait
            request.extensions["timeout"] = httpx.Timeout(
                self.http.timeout.connect, read=None).as_dict()
        try:
            return await self.http.send(request, stream=stream)
        except httpx.TransportError as e:
            raise transport_error(e, str(self.http.base_url)) from e

    async def send(self, call: Call[T]) -> T:
        response = await self._perform(call)
        if self.can_refresh(call, response):
            self.remember(await self.send(self.refresh_call()))
            response = await self._perform(call)
        return self.result(call, response)

    async def paginate(self, paged: Paged[Page, Item]) -> AsyncIterator[Item]:
        cursor: str | None = ""
        while cursor is not None:
            page = await self.run(paged.call(cursor))
            for item in paged.items(page):
                yield item
            cursor = paged.next_cursor(page) or None

    @contextlib.asynccontextmanager
    async def _opened(self, call: Call[Any], *, endless: bool = False
                      ) -> AsyncIterator[httpx.Response]:
        response = await self._perform(call, stream=True, endless=endless)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise error_from_response(response.status_code, response.headers,
                                          response.content)
            yield response
        except httpx.TransportError as e:
            raise transport_error(e, str(self.http.base_url)) from e
        finally:
            await response.aclose()

    async def events(self, sse: Sse[Item]) -> AsyncGenerator[Item, None]:
        parser = SseParser()
        async with self._opened(sse.call, endless=True) as response:
            async for line in response.aiter_lines():
                event = parser.feed(line)
                item = sse.item(event) if event is not None else None
                if item is not None:
                    yield item

    async def first(self, first: First[Item]) -> Item:
        path = first.feed.call.path
        try:
            async with asyncio.timeout(first.timeout_s):
                async with contextlib.aclosing(self.events(first.feed)) as items:
                    async for item in items:
                        if first.until(item):
                            return item
        except TimeoutError as e:
            raise ServiceTimeout(f"{path}: nothing final within {first.timeout_s} s",
                                 details={"path": path}) from e
        raise QuantopsError(f"{path}: the stream ended before a final event",
                            details={"path": path})

    async def download(self, dl: Download) -> Downloaded:
        async with self._opened(dl.call) as response:
            length = response.headers.get("content-length")
            sink = Sink(dl.dest, dl.progress, int(length) if length else None)
            try:
                # Chunk writes to a local file are short: done inline, not in a thread.
                async for chunk in response.aiter_bytes():
                    sink.write(chunk)
            except BaseException:
                sink.abort()
                raise
            return sink.finish(dict(response.headers))
