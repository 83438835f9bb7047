"""Server-sent events, parsed line by line (the WHATWG event-stream format)."""

from __future__ import annotations

from shared.clients.http._calls import Event


class SseParser:
    """Feed it lines without their end-of-line; it returns an ``Event`` at each blank line
    that ends one. Comments (``: keep-alive``) and ``retry:`` fields are dropped."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id = ""

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data and not self._event:
            return None
        event = Event(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event, self._data = "", []  # the last id persists, as in a browser
        return event
