"""One strategy's decisions, bar by bar: features, scores, positions, limits and fills.

Pure and synchronous: the runtime feeds it complete timestamps (``bar_gate``) and the model of
the moment, and publishes what it returns. Every rule is the backtest's own code: the streaming
features equal ``compute_features``, predictions become positions through ``to_signal`` and
``positions_from_signal``, and the paper broker charges the backtest's costs at bar t's close.

Per complete timestamp t:
1. update each symbol's features with its bar (features at t include bar t's close and volume);
2. mark the held quantities to the closes of t (the P&L of the previous period);
3. check the loss limits; a breach trips the kill switch (targets go flat, for good);
4. score the symbols whose features are complete, in one ``predict`` call; a symbol without
   complete features targets flat, as the backtest has no position for it;
5. apply the order limits and fill every change at t's close.

With ``trading.fill == "next_open"`` the decision of step 4 waits (``EngineState.pending``)
and is filled at bar t+1's open, before that bar's own decision: the book is marked to t+1's
open, the pending targets fill there, and the held quantities are marked on to t+1's close. The
equity reported for a step is then the one marked at its open, before its fills.

A symbol without a bar at t keeps its position: it has no price to trade at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from quant.estimators import Model, predict_scores
from quant.paper_broker import Book, Fill, fill, mark, new_book
from quant.performance import positions_from_signal, to_signal
from quant.risk_limits import Breach, OrderRate, RiskLimits, limit_targets, loss_breach
from quant.specs import CostSpec, FeatureSpec, TargetKind, TradingSpec
from quant.streaming_features import BarValues, StreamingFeatures


class EngineState(msgspec.Struct, kw_only=True):
    """What survives a restart besides the bars themselves (features are rebuilt from those)."""

    book: Book
    last_timestamp: str = ""
    killed: bool = False
    kill_reason: str = ""
    bars: int = 0
    orders: int = 0
    refused: int = 0
    pending: dict[str, float] = {}  # decided at the last close, filled at the next open


@dataclass(frozen=True)
class Step:
    """What one timestamp did: ``equity`` is marked before this bar's fills."""

    timestamp: str
    equity: float
    targets: dict[str, float]
    fills: list[Fill]
    breaches: list[Breach]
    model: str = ""


@dataclass
class StrategyEngine:
    """Args:
    symbols: the symbols traded together, each with an equal share of ``capital``.
    features: the model's feature set (its recipe's).
    trading, costs, kind: how scores become positions and what trading costs.
    limits: the risk limits.
    state: a restored state (default: a flat book).
    """

    symbols: Sequence[str]
    features: Sequence[FeatureSpec]
    trading: TradingSpec
    costs: CostSpec
    kind: TargetKind
    limits: RiskLimits = field(default_factory=RiskLimits)
    capital: float = 1.0
    state: EngineState | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = EngineState(book=new_book(list(self.symbols), self.capital))
        self._streams = {s: StreamingFeatures(self.features) for s in self.symbols}
        self._rate = OrderRate(self.limits.max_orders_per_s)

    def warm(self, bars: dict[str, BarValues]) -> None:
        """Advance the features only: a bar already traded before a restart."""
        for symbol, bar in bars.items():
            self._streams[symbol].update(bar)

    def kill(self, reason: str) -> None:
        """The kill switch: every later step targets flat."""
        assert self.state is not None
        self.state.killed, self.state.kill_reason = True, reason

    def flatten(self, reason: str) -> list[Fill]:
        """Trip the kill switch and close every position now, at the last known closes."""
        assert self.state is not None
        self.kill(reason)
        book = self.state.book
        open_ = {s: 0.0 for s, p in book.positions.items() if p != 0.0}
        fills = fill(book, open_, book.closes, self.state.last_timestamp,
                     cost_bps=self.costs.bps)
        self.state.orders += len(fills)
        return fills

    def step(self, timestamp: str, bars: dict[str, BarValues], model: Model | None, *,
             now_s: float = 0.0, model_ref: str = "") -> Step:
        if self.trading.fill == "next_open":
            return self._step_next_open(timestamp, bars, model, now_s=now_s,
                                        model_ref=model_ref)
        state = self.state
        assert state is not None
        vectors = {s: self._streams[s].update(bar) for s, bar in bars.items()}
        closes = {s: bar.close for s, bar in bars.items()}
        mark(state.book, closes, day=timestamp[:10])
        equity = state.book.equity
        breaches: list[Breach] = []
        loss = None if state.killed else loss_breach(state.book, self.limits)
        if loss is not None:
            breaches.append(loss)
            self.kill(loss.limit)
        if state.killed or model is None:
            wanted = {s: 0.0 for s in bars} if state.killed else {}
        else:
            wanted = self._targets(vectors, model)
        targets, limited = limit_targets(wanted, self.limits, state.book.slots)
        breaches += limited
        targets = self._rate_limited(targets, now_s, breaches)
        fills = fill(state.book, targets, closes, timestamp, cost_bps=self.costs.bps)
        state.last_timestamp, state.bars = timestamp, state.bars + len(bars)
        state.orders += len(fills)
        return Step(timestamp=timestamp, equity=equity, targets=targets, fills=fills,
                    breaches=breaches, model=model_ref)

    def _step_next_open(self, timestamp: str, bars: dict[str, BarValues], model: Model | None,
                        *, now_s: float, model_ref: str) -> Step:
        state = self.state
        assert state is not None
        vectors = {s: self._streams[s].update(bar) for s, bar in bars.items()}
        day = timestamp[:10]
        mark(state.book, {s: bar.open for s, bar in bars.items()}, day=day)
        equity = state.book.equity
        breaches: list[Breach] = []
        loss = None if state.killed else loss_breach(state.book, self.limits)
        if loss is not None:
            breaches.append(loss)
            self.kill(loss.limit)
        due = {s: 0.0 for s in bars} if state.killed else \
            {s: t for s, t in state.pending.items() if s in bars}
        due = self._rate_limited(due, now_s, breaches)
        fills = fill(state.book, due, {s: bars[s].open for s in due}, timestamp,
                     cost_bps=self.costs.bps)
        mark(state.book, {s: bar.close for s, bar in bars.items()}, day=day)
        wanted = {} if state.killed or model is None else self._targets(vectors, model)
        decided, limited = limit_targets(wanted, self.limits, state.book.slots)
        state.pending = {**{s: t for s, t in state.pending.items() if s not in due}, **decided}
        state.last_timestamp, state.bars = timestamp, state.bars + len(bars)
        state.orders += len(fills)
        return Step(timestamp=timestamp, equity=equity, targets=decided, fills=fills,
                    breaches=breaches + limited, model=model_ref)

    def _targets(self, vectors: dict[str, np.ndarray], model: Model) -> dict[str, float]:
        ready = sorted(s for s, v in vectors.items() if np.isfinite(v).all())
        targets = {s: 0.0 for s in vectors}
        if ready:
            scores = predict_scores(model, np.vstack([vectors[s] for s in ready]))
            positions = positions_from_signal(to_signal(scores, self.kind), self.trading)
            targets.update({s: float(p) for s, p in zip(ready, positions, strict=True)})
        return targets

    def _rate_limited(self, targets: dict[str, float], now_s: float,
                      breaches: list[Breach]) -> dict[str, float]:
        assert self.state is not None
        held = self.state.book.positions
        out = dict(targets)
        for symbol in sorted(targets):
            if targets[symbol] == held.get(symbol, 0.0) or self._rate.admit(now_s):
                continue
            out[symbol] = held.get(symbol, 0.0)
            self.state.refused += 1
            breaches.append(Breach(limit="max_orders_per_s",
                                   threshold=float(self.limits.max_orders_per_s or 0),
                                   observed=float(len(self._rate.sent)), symbol=symbol))
        return out
