"""Wire messages of the live trading loop (``shared.subjects.LiveSubject``, ``LIVE_*_EVENTS``
and the ``QUANTOPS_BARS`` stream), served by every executor process that loads the quant
plugin.

- Bars: ``bars.<symbol>`` on the ``QUANTOPS_BARS`` stream, body ``Bar`` (the predict request's
  bar), ``Nats-Msg-Id: <symbol>@<ISO timestamp>`` so that JetStream drops a re-sent bar.
- ``executor.live.start``: store a ``StrategySpec`` and run it as a ``live_strategy`` task (one
  runner per strategy; a runner whose executor dies is redelivered and resumes from its
  checkpoint). Starting a running strategy again changes nothing.
- ``executor.live.stop`` / ``executor.live.kill``: stop the runner; kill also trips the kill
  switch (flatten every position, refuse new ones until started again).
- ``executor.live.status`` / ``executor.live.list``: positions, cash, P&L, risk state, counters
  and the latest fills of one strategy, or of all.
- Events on the EVENTS stream: ``events.live.fill.<strategy>`` (``FillEvent``) and
  ``events.live.risk.<strategy>`` (``BreachEvent``), each with a ``Nats-Msg-Id`` derived from
  strategy, bar and symbol, so a bar re-run after a crash publishes nothing twice.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from shared.contracts.base import Message

StrategyName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}\Z", min_length=1,
                                           max_length=64)]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}\Z", min_length=1,
                                     max_length=32)]


class Limits(Message, frozen=True):
    """Risk limits (``quant.risk_limits.RiskLimits``); ``None`` switches one off."""

    max_position: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    max_gross: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    max_daily_loss: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    max_drawdown: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    max_orders_per_s: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] | None = None


class StrategySpec(Message, frozen=True):
    """One live strategy.

    Parameters:
        name: unique; keys its state, task and events.
        model: a registry ref, usually an alias (``demo@production``): a promotion swaps the
            model between two bars.
        symbols: traded together, each with an equal share of ``capital``.
        limits: risk limits.
        cost_bps, mode, threshold, fill: override the model's own costs and trading rule;
            ``fill`` is ``close`` (at bar t's close) or ``next_open`` (at bar t+1's open), the
            backtest's two conventions.
    """

    name: StrategyName
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    symbols: Annotated[list[Symbol], msgspec.Meta(min_length=1, max_length=500)]
    limits: Limits = Limits()
    capital: Annotated[float, msgspec.Meta(gt=0, le=1e15)] = 1_000_000.0
    cost_bps: Annotated[float, msgspec.Meta(ge=0, le=10_000)] | None = None
    mode: Literal["long_short", "long_flat"] | None = None
    threshold: Annotated[float, msgspec.Meta(ge=0, le=1e6)] | None = None
    fill: Literal["close", "next_open"] | None = None


class StartRequest(Message, frozen=True):
    spec: StrategySpec


class StrategyRequest(Message, frozen=True):
    name: StrategyName
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class FillEvent(Message, frozen=True):
    """One paper fill: position (exposure of the symbol's slot, -1..1) and shares traded."""

    strategy: str
    symbol: str
    timestamp: str
    from_position: float
    to_position: float
    price: float
    quantity: float
    cost: float
    model: str = ""


class BreachEvent(Message, frozen=True):
    """A risk limit that acted; ``kill`` when it tripped the kill switch."""

    strategy: str
    timestamp: str
    limit: str
    threshold: float
    observed: float
    symbol: str = ""
    kill: bool = False


class PositionView(Message, frozen=True):
    symbol: str
    position: float
    quantity: float
    last_close: float
    market_value: float


class StrategyStatus(Message, frozen=True):
    """A strategy as its last checkpoint left it.

    ``equity`` is marked at the last bar after its costs; ``pnl`` is ``equity - capital``;
    ``bars`` counts bars applied, ``duplicates``/``late`` bars dropped.
    """

    name: str
    desired: Literal["running", "stopped", "killed"]
    spec: StrategySpec
    last_timestamp: str = ""
    equity: float = 0.0
    cash: float = 0.0
    pnl: float = 0.0
    fees: float = 0.0
    peak: float = 0.0
    drawdown: float = 0.0
    daily_pnl: float = 0.0
    killed: bool = False
    kill_reason: str = ""
    positions: list[PositionView] = []
    bars: int = 0
    orders: int = 0
    refused: int = 0
    duplicates: int = 0
    late: int = 0
    breaches: int = 0
    model: str = ""
    recent_fills: list[FillEvent] = []
    task_id: str = ""


class StrategyList(Message, frozen=True):
    strategies: list[StrategyStatus]
