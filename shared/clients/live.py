"""Typed async client of the live trading loop (``executor.live.*``), over a ``shared.bus.Bus``.

    live = LiveClient(bus)
    await live.start(StrategySpec(name="demo", model="demo-ridge@production",
                                  symbols=["AAPL", "MSFT"]))
    status = await live.status("demo")      # positions, cash, P&L, risk state, latest fills
    await live.kill("demo", reason="limits under review")   # flatten and stop

Bars go to the ``QUANTOPS_BARS`` stream (``services.executor.plugins.quant.live.feeds``).
"""

from __future__ import annotations

from shared.clients.base import ServiceClient
from shared.contracts import live as c
from shared.contracts.base import Empty
from shared.subjects import LiveSubject as S


class LiveClient(ServiceClient):
    """Args: as ``ServiceClient``."""

    async def start(self, spec: c.StrategySpec) -> c.StrategyStatus:
        return await self._call(S.START, c.StartRequest(spec=spec), c.StrategyStatus)

    async def stop(self, name: str, *, reason: str = "") -> c.StrategyStatus:
        return await self._call(S.STOP, c.StrategyRequest(name=name, reason=reason),
                                c.StrategyStatus)

    async def kill(self, name: str, *, reason: str = "") -> c.StrategyStatus:
        return await self._call(S.KILL, c.StrategyRequest(name=name, reason=reason),
                                c.StrategyStatus)

    async def status(self, name: str) -> c.StrategyStatus:
        return await self._call(S.STATUS, c.StrategyRequest(name=name), c.StrategyStatus)

    async def list(self) -> list[c.StrategyStatus]:
        return (await self._call(S.LIST, Empty(), c.StrategyList)).strategies
