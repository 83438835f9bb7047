"""Reads answered by the stream's leader, for a replicated bucket.

A direct get (``$JS.API.DIRECT.GET``) may be answered by any replica, and a follower may not
have applied a write the leader has already acknowledged: on an R3 bucket about one direct get
in fifteen right after an acknowledged put returned the previous revision
(tests/cluster/test_reads.py). The stream API's message get is answered by the leader alone,
which acknowledges a write only once it has applied it: every write acknowledged to anyone
before the request is seen. It costs what a single point of service costs (every such read on
one server), so it is used only where that guarantee is promised: strong reads on R>1.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from shared.errors import QuantopsError, ServiceTimeout, ServiceUnavailable

_NO_MESSAGE = 10037


class _Error(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Message(msgspec.Struct):
    subject: str
    seq: int
    time: str
    data: str = ""
    hdrs: str = ""


class _Reply(msgspec.Struct):
    message: _Message | None = None
    error: _Error | None = None


_reply = msgspec.json.Decoder(_Reply)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class LeaderMessage:
    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]
    time: str


async def last_by_subject(nc: NATS, stream: str, subject: str, timeout_s: float
                          ) -> LeaderMessage | None:
    """The latest message on ``subject`` as the leader has it, or None."""
    return await _get(nc, stream, {"last_by_subj": subject}, timeout_s)


async def by_sequence(nc: NATS, stream: str, seq: int, timeout_s: float
                      ) -> LeaderMessage | None:
    return await _get(nc, stream, {"seq": seq}, timeout_s)


async def _get(nc: NATS, stream: str, request: dict[str, object], timeout_s: float
               ) -> LeaderMessage | None:
    try:
        msg = await nc.request(f"$JS.API.STREAM.MSG.GET.{stream}", _encode(request),
                               timeout=timeout_s)
    except NoRespondersError as e:
        raise ServiceUnavailable("JetStream does not answer for the state bucket",
                                 details={"stream": stream}) from e
    except (NatsTimeout, TimeoutError) as e:
        raise ServiceTimeout("JetStream did not answer a read in time") from e
    reply = _reply.decode(msg.data)
    if reply.error is not None:
        if reply.error.err_code == _NO_MESSAGE:
            return None
        if reply.error.code == 503:  # the stream has no leader (an election): retry shortly
            raise ServiceUnavailable(f"the state bucket has no leader right now: "
                                     f"{reply.error.description}",
                                     details={"stream": stream, "retry_after_s": 1.0})
        raise QuantopsError(f"message get failed: {reply.error.description}",
                            details={"err_code": reply.error.err_code})
    if reply.message is None:
        raise QuantopsError("message get answered without a message")
    m = reply.message
    return LeaderMessage(m.subject, m.seq, base64.b64decode(m.data),
                         _headers(base64.b64decode(m.hdrs)) if m.hdrs else {}, m.time)


def _headers(raw: bytes) -> dict[str, str]:
    """``NATS/1.0\\r\\nName: value\\r\\n...`` -> a dict (the last value of a repeated name)."""
    out: dict[str, str] = {}
    for line in raw.decode().split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out
