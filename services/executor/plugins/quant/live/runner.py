"""One live strategy, running: bars in, decisions by ``quant.strategy_engine``, fills out.

Exactly once per bar, across restarts. The runner reads the bars of its symbols from the start
of the BARS stream (an ordered consumer): every bar up to its checkpoint only rebuilds the
features, which are a pure function of the bars; from the first bar after it, it trades. After
each bar it publishes that bar's fills and breaches with ids derived from (strategy, bar,
symbol), then writes the checkpoint. A crash between the two re-runs that one bar from the
previous checkpoint: the same decisions, the same ids, which JetStream drops as duplicates.

Operator commands (``stop``, ``kill``) arrive as changes of the strategy's spec record in the
state service and are applied between two bars, never during one. A promotion moves the model
between two bars too (``LiveModels`` swaps it without a gap); a new version must use the same
features, since the streaming state was built for them (otherwise the strategy holds its
positions and reports a ``model_features`` breach).

Tracing: the bar that completes a timestamp carries its feed's trace context; the runner's
``live.bar`` span and every fill published under it join that trace, so one trace runs from
ingestion to fill.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import api
from opentelemetry import context as otel_context

from quant.bar_gate import BarGate
from quant.estimators import Model
from quant.paper_broker import Fill, new_book
from quant.risk_limits import Breach, RiskLimits
from quant.specs import CostSpec, TradingSpec
from quant.strategy_engine import EngineState, Step, StrategyEngine
from quant.streaming_features import BarValues
from services.executor.plugins.quant.live.checkpoint import RECENT_FILLS, Checkpoint, Records
from services.executor.plugins.quant.live.marketdata import bar_decoder, bar_time
from services.executor.plugins.quant.server.live import LiveModels, Served
from shared import telemetry
from shared.bus import Bus
from shared.contracts.live import BreachEvent, FillEvent, StrategySpec
from shared.logs import swallowed
from shared.subjects import (
    Header,
    Stream,
    bar_subject,
    live_fill_subject,
    live_risk_subject,
)

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()


def limits_of(spec: StrategySpec) -> RiskLimits:
    return msgspec.convert(msgspec.to_builtins(spec.limits), RiskLimits)


class StrategyRunner:
    """Args:
    bus: the executor's connection.
    spec: the strategy.
    records: its state-service records.
    models: the process's live models (hot-swapped on promotion events).
    clock: wall-clock seconds, for the order-rate limit.
    """

    def __init__(self, bus: Bus, spec: StrategySpec, *, records: Records, models: LiveModels,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus, self.spec, self.records, self.models = bus, spec, records, models
        self.clock = clock
        self.gate: BarGate[BarValues] = BarGate(frozenset(spec.symbols))
        self.engine: StrategyEngine | None = None
        self.checkpoint: Checkpoint | None = None
        self.served: Served | None = None
        self.commands: asyncio.Queue[str] = asyncio.Queue()
        self.idle = asyncio.Event()

    # --- start ------------------------------------------------------------------------------

    async def _prepare(self) -> None:
        self.served = await self.models.get(self.spec.model)
        recipe = self.served.recipe
        restored = await self.records.checkpoint(self.spec.name)
        self.checkpoint = restored or Checkpoint(state=EngineState(
            book=new_book(list(self.spec.symbols), self.spec.capital)))
        trading = TradingSpec(mode=self.spec.mode or recipe.trading.mode,
                              threshold=recipe.trading.threshold if self.spec.threshold is None
                              else self.spec.threshold,
                              fill=self.spec.fill or recipe.trading.fill)
        costs = recipe.costs if self.spec.cost_bps is None else CostSpec(bps=self.spec.cost_bps)
        self.engine = StrategyEngine(symbols=self.spec.symbols, features=recipe.features,
                                     trading=trading, costs=costs, kind=recipe.target.kind,
                                     limits=limits_of(self.spec), capital=self.spec.capital,
                                     state=self.checkpoint.state)

    async def run(self, stop: asyncio.Event, *, killed: bool = False) -> Checkpoint:
        """Follow the bars until ``stop`` is set or a command ends the run. Started ``killed``,
        it flattens and ends; started otherwise, an earlier kill is lifted (the operator
        started it again)."""
        await self._prepare()
        assert self.engine is not None and self.engine.state is not None
        if killed:
            self.commands.put_nowait("killed")
        elif self.engine.state.killed:
            self.engine.state.killed, self.engine.state.kill_reason = False, ""
        inbox: asyncio.Queue[Msg] = asyncio.Queue()
        config = api.ConsumerConfig(filter_subjects=[bar_subject(s) for s in self.spec.symbols],
                                    deliver_policy=api.DeliverPolicy.ALL)
        sub = await self.bus.nc.jetstream().subscribe(
            bar_subject(self.spec.symbols[0]), stream=Stream.BARS, cb=inbox.put,
            ordered_consumer=True, config=config)
        try:
            await self._loop(inbox, stop)
        finally:
            with swallowed(log, "unsubscribing the bar feed", level=logging.DEBUG):
                await sub.unsubscribe()
        assert self.checkpoint is not None
        return self.checkpoint

    async def _loop(self, inbox: asyncio.Queue[Msg], stop: asyncio.Event) -> None:
        while not stop.is_set():
            while not self.commands.empty():
                if await self._command(self.commands.get_nowait()):
                    return
            try:
                msg = await asyncio.wait_for(inbox.get(), timeout=0.2)
            except TimeoutError:
                self.idle.set()
                continue
            self.idle.clear()
            await self._on_message(msg)

    async def _command(self, command: str) -> bool:
        """Apply an operator command; True when the run ends."""
        assert self.engine is not None and self.checkpoint is not None
        if command == "killed":
            fills = self.engine.flatten("operator kill switch")
            state = self.engine.state
            assert state is not None
            await self._publish_fills(fills, suffix=":kill")
            await self._publish_breaches(state.last_timestamp, [Breach(
                limit="kill_switch", threshold=0.0, observed=0.0, kill=True)])
            await self._save(fills)
            return True
        return command == "stopped"

    # --- bars -------------------------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        try:
            bar = bar_decoder.decode(msg.data)
        except msgspec.DecodeError:
            self.gate.counts["invalid"] += 1
            log.warning("unreadable bar", extra={"subject": msg.subject})
            return
        values = BarValues(bar.open, bar.high, bar.low, bar.close, bar.volume)
        if not all(map(_positive, values[:4])) or not bar.volume >= 0:
            self.gate.counts["invalid"] += 1
            return
        completed = self.gate.offer(bar.symbol, bar_time(bar.timestamp), values)
        if not completed:
            return
        token = otel_context.attach(telemetry.extract(msg.headers))
        try:
            for timestamp, bars in completed:
                await self._on_timestamp(timestamp, bars)
        finally:
            otel_context.detach(token)

    async def _on_timestamp(self, timestamp: str, bars: dict[str, BarValues]) -> None:
        assert self.engine is not None and self.engine.state is not None
        if timestamp <= self.engine.state.last_timestamp:
            self.engine.warm(bars)  # traded before a restart: rebuild the features only
            return
        with telemetry.span("live.bar", {"strategy": self.spec.name, "timestamp": timestamp,
                                         "symbols": len(bars)}):
            model, ref, breaches = await self._model()
            step = self.engine.step(timestamp, bars, model, now_s=self.clock(), model_ref=ref)
            await self._publish_fills(step.fills)
            await self._publish_breaches(timestamp, breaches + step.breaches)
            await self._save(step.fills, step)

    async def _model(self) -> tuple[Model | None, str, list[Breach]]:
        assert self.engine is not None and self.served is not None
        try:
            served = await self.models.get(self.spec.model)
        except Exception as e:  # a registry hiccup must not stop trading: keep the model
            log.warning("model refresh failed; keeping the current one", extra={"error": str(e)})
            served = self.served
        if list(served.recipe.features) != list(self.engine.features):
            return None, served.info.ref, [Breach(limit="model_features", threshold=0.0,
                                                  observed=0.0)]
        self.served = served
        return served.model, served.info.ref, []

    # --- outputs ----------------------------------------------------------------------------

    async def _publish_fills(self, fills: list[Fill], suffix: str = "") -> None:
        js = self.bus.nc.jetstream()
        subject = live_fill_subject(self.spec.name)
        for f in fills:
            event = self._fill_event(f)
            headers = telemetry.inject({
                Header.MSG_ID.value: f"fill:{self.spec.name}:{f.timestamp}:{f.symbol}{suffix}"})
            with telemetry.span("live.fill", {"symbol": f.symbol, "to": f.to_position}):
                await js.publish(subject, _encoder.encode(event), headers=dict(headers))

    async def _publish_breaches(self, timestamp: str, breaches: list[Breach]) -> None:
        js = self.bus.nc.jetstream()
        subject = live_risk_subject(self.spec.name)
        for b in breaches:
            event = BreachEvent(strategy=self.spec.name, timestamp=timestamp, limit=b.limit,
                                threshold=b.threshold, observed=b.observed, symbol=b.symbol,
                                kill=b.kill)
            key = f"risk:{self.spec.name}:{timestamp}:{b.limit}:{b.symbol}"
            await js.publish(subject, _encoder.encode(event), headers={Header.MSG_ID.value: key})
        if self.checkpoint is not None:
            self.checkpoint.breaches += len(breaches)

    def _fill_event(self, f: Fill) -> FillEvent:
        return FillEvent(strategy=self.spec.name, symbol=f.symbol, timestamp=f.timestamp,
                         from_position=f.from_position, to_position=f.to_position,
                         price=f.price, quantity=f.quantity, cost=f.cost,
                         model=self.served.info.ref if self.served else "")

    async def _save(self, fills: list[Fill], step: Step | None = None) -> None:
        checkpoint = self.checkpoint
        assert checkpoint is not None
        checkpoint.counts = dict(self.gate.counts)
        if step is not None:
            checkpoint.model = step.model
        recent = checkpoint.recent_fills + [self._fill_event(f) for f in fills]
        checkpoint.recent_fills = recent[-RECENT_FILLS:]
        await self.records.save(self.spec.name, checkpoint)


def _positive(x: float) -> bool:
    return x > 0 and x != float("inf")

