"""The nats-py client with cheaper message headers: same wire format, same rules, less CPU.

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

Everything else (status lines, JetStream flow control, reconnects) is nats-py's own code.
"""

from __future__ import annotations

import re
from typing import Any, Final

from nats import errors
from nats.aio.client import Client
from nats.protocol import command

_CRLF: Final = b"\r\n"
_HEADER_OPEN: Final = b"NATS/1.0\r\n"
# nats-py's own rules, restated: RFC 7230 token characters for names; CR/LF out of values.
_HEADER_KEY_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES: Final = str.maketrans({"\r": " ", "\n": " "})
_WHITESPACE: Final = re.compile(r"\s")
#: Distinct header names remembered; a caller inventing names per message gets no growth.
MAX_CACHED_NAMES: Final = 256


class FastHeadersClient(Client):
    """A nats-py ``Client`` whose header encoding and parsing cost less; see the module."""

    def __init__(self) -> None:
        super().__init__()
        self._header_names: dict[str, bytes] = {}

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

