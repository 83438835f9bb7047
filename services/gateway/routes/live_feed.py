"""``GET /v1/strategy-events``: the live loop's facts as server-sent events, what the dashboard's
live view follows (an ``EventSource`` with a stream token, like the task feed).

The gateway subscribes to ``events.live.fill.<strategy>`` and ``events.live.risk.<strategy>``
for as long as a client reads, and relays each message as it arrives: a ``fill`` event
(``FillEvent``) or a ``risk`` event (``BreachEvent``), the JSON passed through untouched. A
slow reader loses events (the queue is bounded), never holds NATS back; it re-reads
``/v1/strategies`` for the state, which the events only announce. Like every event stream, it
takes one of the caller's stream slots (``services.gateway.streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from services.gateway.forward import bus_of
from services.gateway.routes.conventions import STREAM
from services.gateway.streams import READY, limited
from shared.bus import flush
from shared.logs import swallowed
from shared.subjects import LIVE_FILL_EVENTS, LIVE_RISK_EVENTS

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
MAX_QUEUED = 10_000
#: SSE event name -> subject prefix (the strategy's name follows).
KINDS = {"fill": LIVE_FILL_EVENTS, "risk": LIVE_RISK_EVENTS}

Strategy = Annotated[str, QueryParameter(max_length=200, pattern=r"^[A-Za-z0-9_-]*\Z",
                                         description="only this strategy's events")]


async def _relay(request: Request[Any, Any, Any], strategy: str
                 ) -> AsyncIterator[ServerSentEventMessage]:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=MAX_QUEUED)

    def relay(kind: str) -> Any:
        async def on_event(msg: Any) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((kind, msg.data))
        return on_event

    nc = bus_of(request).nc
    subs = [await nc.subscribe(f"{prefix}.{strategy or '*'}", cb=relay(kind))
            for kind, prefix in KINDS.items()]
    await flush(nc)
    try:
        yield READY  # every event from here on is relayed
        while True:
            try:
                kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            if data[:1] == b"{":  # JSON objects only: never relay what cannot be parsed
                yield ServerSentEventMessage(data=data.decode(errors="replace"), event=kind)
    finally:
        for sub in subs:
            with swallowed(log, "unsubscribing the strategy event feed", level=logging.DEBUG):
                await sub.unsubscribe()


@get("/v1/strategy-events", opt=STREAM, tags=["live"],
     summary="Server-sent events of the live loop: 'fill' (FillEvent) and 'risk' "
             "(BreachEvent) as they happen, of every strategy or one")
async def strategy_events(request: Request[Any, Any, Any], strategy: Strategy = ""
                          ) -> ServerSentEvent:
    return ServerSentEvent(await limited(request, _relay(request, strategy)))


ROUTES = [strategy_events]
