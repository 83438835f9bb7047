"""The nats-py client as quantops uses it: same wire format, same rules, less CPU per message.

Every bus request carries headers (correlation id, bus token, trace context), and nats-py 2.16
spends more on them than on the rest of a round trip's Python work: on the sending side it
checks every key against a regular expression and strips and re-encodes every value on every
publish; on the receiving side it tests each character of each name for whitespace with a
generator (measured with cProfile on ``bench.bench_bus``: about a quarter of the bus's CPU).
This subclass keeps nats-py's rules exactly and only does the work once where it can:

- a header *name* is checked and encoded once per distinct name (a service uses a handful)
  and remembered, in a bounded table;
- a *value* is still trimmed and has CR/LF turned into spaces, so it can never end the header
  line or inject protocol commands, but the translation runs only when a CR or LF is there;
- received names are checked for whitespace with one compiled pattern (``\\s`` in a ``str``
  pattern is ``str.isspace``, the test nats-py applies per character).

Request/reply and serving skip nats-py's per-subscription queue, which costs a queue hand-off
and a task wake-up per message on each side (with the rest below, a fifth of a bus round trip's
CPU, ``bench.bench_bus``):

- a reply is matched to its request from the read loop itself; a request waits on one future
  with one timer (nats-py wraps it in ``asyncio.wait_for``), and its inbox token is a counter
  under the connection's random inbox prefix (nats-py draws a NUID and calls ``os.urandom``
  per request: the prefix alone is what makes an inbox unguessable and unique);
- ``deliver_directly`` hands a subscription's messages to a function called from the read loop
  (the bus's dispatcher, which starts a task per request itself); it must not block, and
  reports a message it cannot take, which nats-py's slow-consumer callback then hears of.

Everything else (status lines, JetStream flow control, reconnects) is nats-py's own code; the
pin on nats-py in ``pyproject.toml`` is exact because these methods override its internals.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from typing import Any, Final

from nats import errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.protocol import command

_CRLF: Final = b"\r\n"
_HEADER_OPEN: Final = b"NATS/1.0\r\n"
# nats-py's own rules, restated: RFC 7230 token characters for names; CR/LF out of values.
_HEADER_KEY_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES: Final = str.maketrans({"\r": " ", "\n": " "})
_WHITESPACE: Final = re.compile(r"\s")
#: Distinct header names remembered; a caller inventing names per message gets no growth.
MAX_CACHED_NAMES: Final = 256


#: ``deliver(msg)`` returns False when it has no room for ``msg`` (dropped: a slow consumer).
Deliver = Callable[[Msg], bool]


def _expire(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(errors.TimeoutError())


class FastClient(Client):
    """A nats-py ``Client`` whose headers, requests and served messages cost less; see the
    module."""

    def __init__(self) -> None:
        super().__init__()
        self._header_names: dict[str, bytes] = {}
        self._direct: dict[int, Deliver] = {}
        self._reply_tokens = itertools.count(1)
        self._reply_prefix = ""

    def deliver_directly(self, sub: Subscription, deliver: Deliver) -> None:
        """Messages of ``sub`` go to ``deliver``, called from the read loop, instead of the
        subscription's queue and callback task (which stay idle)."""
        self._direct[sub._id] = deliver

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                           headers: bytes) -> None:
        deliver = self._direct.get(sid)
        if deliver is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        sub = self._subs.get(sid)
        if sub is None:  # unsubscribed while the message was on its way
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        parsed = await self._process_headers(headers) if headers else None
        msg = self._build_message(sid, subject, reply, data, parsed)
        if not deliver(msg):
            await self._error_cb(errors.SlowConsumerError(
                subject=msg.subject, reply=msg.reply, sid=sid, sub=sub))

    def _remove_sub(self, sid: int, max_msgs: int = 0) -> None:
        super()._remove_sub(sid, max_msgs)
        self._direct.pop(sid, None)

    async def _init_request_sub(self) -> None:
        self._resp_map = {}
        prefix = bytearray(self._inbox_prefix)
        prefix += b"." + self._nuid.next() + b"."
        self._resp_sub_prefix = prefix
        self._reply_prefix = prefix.decode()
        sub = await self.subscribe(self._reply_prefix + "*", cb=self._request_sub_callback)
        self.deliver_directly(sub, self._deliver_reply)

    def _deliver_reply(self, msg: Msg) -> bool:
        future = self._resp_map.get(msg.subject[len(self._reply_prefix):])
        if future is not None and not future.done():
            future.set_result(msg)
        return True

    async def _request_new_style(self, subject: str, payload: bytes, timeout: float = 1,  # noqa: ASYNC109 - nats-py's signature
                                 headers: dict[str, Any] | None = None) -> Msg:
        if self.is_draining_pubs:
            raise errors.ConnectionDrainingError
        if not self._resp_sub_prefix:
            await self._init_request_sub()
        token = f"{next(self._reply_tokens):x}"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._resp_map[token] = future
        timer = loop.call_later(timeout, _expire, future)
        try:
            await self.publish(subject, payload, reply=self._reply_prefix + token,
                               headers=headers)
            return await future
        finally:
            timer.cancel()
            self._resp_map.pop(token, None)

    def _encoded_name(self, key: str) -> bytes:
        """``b"Name: "`` for a valid header name, ``b""`` for one nats-py skips (blank)."""
        cached = self._header_names.get(key)
        if cached is not None:
            return cached
        name = key.strip()
        if name and not _HEADER_KEY_RE.fullmatch(name):
            raise errors.BadHeaderError(name)
        encoded = name.encode() + b": " if name else b""
        if len(self._header_names) < MAX_CACHED_NAMES:
            self._header_names[key] = encoded
        return encoded

    def _header_block(self, headers: dict[str, Any]) -> bytes:
        parts = [_HEADER_OPEN]
        for key, value in headers.items():
            name = self._encoded_name(key)
            if not name:
                continue
            text = value.strip()
            if "\r" in text or "\n" in text:
                text = text.translate(_NEWLINES)
            parts += (name, text.encode(), _CRLF)
        parts.append(_CRLF)
        return b"".join(parts)

    async def _send_publish(self, subject: str, reply: str, payload: bytes, payload_size: int,
                            headers: dict[str, Any] | None) -> None:
        if subject == "":
            raise errors.BadSubjectError
        if headers is None:
            pub_cmd = command.pub_cmd(subject, reply, payload)
        else:
            pub_cmd = command.hpub_cmd(subject, reply, self._header_block(headers), payload)
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += payload_size
        await self._send_command(pub_cmd)
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    @staticmethod
    def _parse_header_lines(raw: bytes) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in raw.split(_CRLF):
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            try:
                key = name.strip().decode("ascii")
            except UnicodeDecodeError:
                continue
            if _WHITESPACE.search(key):
                continue
            out[key] = value.strip().decode("utf-8", "replace")
        return out

