"""``client.strategies``: live strategies, their positions, P&L and risk state, and the
operator's controls (``/v1/strategies``).

    client.strategies.start(StrategySpec(name="demo", model="demo-ridge@production",
                                         symbols=["AAPL", "MSFT"]))
    status = client.strategies.get("demo")
    client.strategies.kill("demo", reason="limits under review")   # operator
    for event in client.strategies.events(strategy="demo"): ...     # FillEvent | BreachEvent
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from shared.clients.http._calls import TT, Call, Event, OnReady, Resource, Sse, op, stream
from shared.contracts import live as c

_FILL = msgspec.json.Decoder(c.FillEvent)
_RISK = msgspec.json.Decoder(c.BreachEvent)


def _decode_event(event: Event) -> c.FillEvent | c.BreachEvent | None:
    if not event.data.startswith("{"):
        return None
    if event.event == "fill":
        return _FILL.decode(event.data)
    return _RISK.decode(event.data) if event.event == "risk" else None


def _path(name: str, *rest: str) -> str:
    return "/".join([f"/v1/strategies/{quote(name, safe='')}", *rest])


class Strategies(Resource[TT]):
    @op
    def list(self) -> Call[c.StrategyList]:
        return Call("GET", "/v1/strategies", c.StrategyList)

    @op
    def get(self, name: str) -> Call[c.StrategyStatus]:
        return Call("GET", _path(name), c.StrategyStatus)

    @op
    def start(self, spec: c.StrategySpec) -> Call[c.StrategyStatus]:
        """Start (or keep running) a strategy; needs the operator role."""
        return Call("POST", "/v1/strategies", c.StrategyStatus, json=msgspec.to_builtins(spec))

    @op
    def stop(self, name: str, *, reason: str = "") -> Call[c.StrategyStatus]:
        return Call("POST", _path(name, "stop"), c.StrategyStatus, json={"reason": reason})

    @op
    def kill(self, name: str, *, reason: str = "") -> Call[c.StrategyStatus]:
        """The kill switch: flatten every position and stop."""
        return Call("POST", _path(name, "kill"), c.StrategyStatus, json={"reason": reason})

    @stream
    def events(self, *, strategy: str = "", on_ready: OnReady | None = None
               ) -> Sse[c.FillEvent | c.BreachEvent]:
        """Fills and risk breaches as they happen (``/v1/strategy-events``), of every
        strategy or of ``strategy``; ``on_ready()`` once the feed is live."""
        return Sse(Call("GET", "/v1/strategy-events", params={"strategy": strategy}),
                   _decode_event, on_ready)
