"""The blocking transport: performs plans with an ``httpx.Client``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Iterator
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
from shared.clients.http._io import Sink, chunks
from shared.clients.http._problems import error_from_response, transport_error
from shared.clients.http._sse import SseParser
from shared.errors import QuantopsError, ServiceTimeout

T = TypeVar("T")
Item = TypeVar("Item")
Page = TypeVar("Page")


class SyncTransport(TransportBase):
    def __init__(self, http: httpx.Client, credentials: Credentials) -> None:
        super().__init__(credentials)
        self.http = http

    def run(self, plan: Plan[T]) -> T:
        if not isinstance(plan, Generator):
            return self._step(plan)  # type: ignore[no-any-return]
        value: Any = None
        error: QuantopsError | None = None
        while True:
            try:
                step = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value, error = self._step(step), None
            except QuantopsError as e:  # the plan may clean up (abort an upload) and re-raise
                value, error = None, e

    def upload_body(self, upload: Upload) -> Iterator[bytes]:
        return chunks(upload)

    def _step(self, step: Call[Any] | Download | First[Any]) -> Any:
        if isinstance(step, Call):
            return self.send(step)
        if isinstance(step, Download):
            return self.download(step)
        return self.first(step)

    def _perform(self, call: Call[Any], *, stream: bool = False,
                 timeout: httpx.Timeout | None = None) -> httpx.Response:
        request = self.build(call, self.http)
        if timeout is not None:
            request.extensions["timeout"] = timeout.as_dict()
        try:
            return self.http.send(request, stream=stream)
        except httpx.TransportError as e:
            raise transport_error(e, str(self.http.base_url)) from e

    def send(self, call: Call[T]) -> T:
        response = self._perform(call)
        if self.can_refresh(call, response):
            self.remember(self.send(self.refresh_call()))
            response = self._perform(call)
        return self.result(call, response)

    def paginate(self, paged: Paged[Page, Item]) -> Iterator[Item]:
        cursor: str | None = ""
        while cursor is not None:
            page = self.run(paged.call(cursor))
            yield from paged.items(page)
            cursor = paged.next_cursor(page) or None

    @contextlib.contextmanager
    def _opened(self, call: Call[Any], timeout: httpx.Timeout | None
                ) -> Iterator[httpx.Response]:
        response = self._perform(call, stream=True, timeout=timeout)
        try:
            if response.status_code >= 400:
                response.read()
                raise error_from_response(response.status_code, response.headers,
                                          response.content)
            yield response
        except httpx.TransportError as e:
            raise transport_error(e, str(self.http.base_url)) from e
        finally:
            response.close()

    def events(self, sse: Sse[Item], deadline: float | None = None
               ) -> Generator[Item, None, None]:
        # Keep-alives arrive every few seconds: no read timeout unless there is a deadline.
        read = None if deadline is None else max(0.05, deadline - time.monotonic())
        timeout = httpx.Timeout(self.http.timeout.connect, read=read)
        parser = SseParser()
        with self._opened(sse.call, timeout) as response:
            for line in response.iter_lines():
                if deadline is not None and time.monotonic() > deadline:
                    raise ServiceTimeout("no matching event in time")
                event = parser.feed(line)
                item = sse.item(event) if event is not None else None
                if item is not None:
                    yield item

    def first(self, first: First[Item]) -> Item:
        deadline = None if first.timeout_s is None else time.monotonic() + first.timeout_s
        try:
            with contextlib.closing(self.events(first.feed, deadline)) as items:
                for item in items:
                    if first.until(item):
                        return item
        except ServiceTimeout as e:
            raise ServiceTimeout(f"{first.feed.call.path}: nothing final within "
                                 f"{first.timeout_s} s", details={"path": first.feed.call.path}
                                 ) from e
        raise QuantopsError(f"{first.feed.call.path}: the stream ended before a final event",
                            details={"path": first.feed.call.path})

    def download(self, dl: Download) -> Downloaded:
        with self._opened(dl.call, None) as response:
            length = response.headers.get("content-length")
            sink = Sink(dl.dest, dl.progress, int(length) if length else None)
            try:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
            except BaseException:
                sink.abort()
                raise
            return sink.finish(dict(response.headers))
