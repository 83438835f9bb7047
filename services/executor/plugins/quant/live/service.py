"""``executor.live.*`` and the ``live_strategy`` task: starting, stopping, killing and reading
live strategies.

A strategy runs as one long-running ``live_strategy`` task, so the executor's machinery gives
it what a supervised process needs: exactly one runner at a time (a work-queue message has one
holder), heartbeats while it runs, and redelivery to another executor when its process dies
(the runner resumes from its checkpoint, see ``runner``). ``start`` records the spec and submits
that task unless one is already queued or running; ``stop`` and ``kill`` change the spec
record, which the runner hears on the state service's change feed and applies between bars.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from nats.aio.msg import Msg

from services.executor.plugins.quant.live.checkpoint import (
    Checkpoint,
    Desired,
    Records,
    SpecRecord,
    spec_key,
)
from services.executor.plugins.quant.live.runner import StrategyRunner
from services.executor.plugins.quant.tasks.common import settings
from services.executor.plugins.quant.tasks.predict import scorer_for
from shared.bus import Bus, Context
from shared.clients.executor import ExecutorClient
from shared.clients.state import StateClient
from shared.contracts.base import Empty
from shared.contracts.executor import TERMINAL
from shared.contracts.live import (
    PositionView,
    StartRequest,
    StrategyList,
    StrategyName,
    StrategyRequest,
    StrategyStatus,
)
from shared.errors import NotFound, RevisionConflict
from shared.subjects import STATE_CHANGES_PREFIX, LiveSubject
from shared.tasks import Endpoint, Reject, Retry, TaskContext, task

TASK_TYPE = "live_strategy"
WEEK_S = 7 * 24 * 3600.0


class LiveStrategyInput(msgspec.Struct, frozen=True, kw_only=True):
    """The strategy to run (its spec is read from the state service)."""

    name: StrategyName


@task(TASK_TYPE, input=LiveStrategyInput, timeout_s=WEEK_S, max_attempts=100)
async def live_strategy(inp: LiveStrategyInput, ctx: TaskContext) -> dict[str, Any]:
    """Run a live strategy until it is stopped or killed (started by ``executor.live.start``)."""
    # Checkpoints are written with the role of whoever started the strategy.
    records = Records(StateClient(ctx.bus, headers=ctx.headers()), settings().live_namespace)
    try:
        record, _ = await records.spec(inp.name)
    except NotFound as e:
        raise Reject(f"no live strategy {inp.name!r}") from e
    if not record.task_id:
        raise Retry("the strategy's start is still recording its runner", delay_s=0.2)
    if record.task_id != ctx.task_id:
        raise Reject(f"strategy {inp.name!r} is run by task {record.task_id}")
    if record.desired == "stopped":
        return {"name": inp.name, "ended": "stopped"}
    models = (await scorer_for(ctx.bus)).models
    runner = StrategyRunner(ctx.bus, record.spec, records=records, models=models)

    async def on_change(msg: Msg) -> None:
        with contextlib.suppress(NotFound):
            current, _ = await records.spec(inp.name)
            if current.desired != "running":
                runner.commands.put_nowait(current.desired)

    subject = f"{STATE_CHANGES_PREFIX}.{settings().live_namespace}.{spec_key(inp.name)}"
    sub = await ctx.bus.nc.subscribe(subject, cb=on_change)
    try:
        await ctx.bus.nc.flush()
        current, _ = await records.spec(inp.name)  # a command sent before we listened
        checkpoint = await runner.run(asyncio.Event(), killed=current.desired == "killed")
    finally:
        await sub.unsubscribe()
    return {"name": inp.name, "ended": current.desired if current.desired != "running"
            else "stopped", "last_timestamp": checkpoint.state.last_timestamp,
            "equity": checkpoint.state.book.equity}


def status_of(record: SpecRecord, checkpoint: Checkpoint | None) -> StrategyStatus:
    """What the routes and the dashboard show: the record and the last checkpoint."""
    base = StrategyStatus(name=record.spec.name, desired=record.desired, spec=record.spec,
                          task_id=record.task_id, equity=record.spec.capital,
                          cash=record.spec.capital, peak=record.spec.capital)
    if checkpoint is None:
        return base
    state, book = checkpoint.state, checkpoint.state.book
    positions = [PositionView(symbol=s, position=book.positions.get(s, 0.0),
                              quantity=book.quantities.get(s, 0.0),
                              last_close=book.closes.get(s, 0.0),
                              market_value=book.quantities.get(s, 0.0) * book.closes.get(s, 0.0))
                 for s in record.spec.symbols]
    return msgspec.structs.replace(
        base, last_timestamp=state.last_timestamp, equity=book.equity, cash=book.cash,
        pnl=book.pnl, fees=book.fees, peak=book.peak,
        drawdown=1.0 - book.equity / book.peak if book.peak > 0 else 0.0,
        daily_pnl=book.equity - book.day_start, killed=state.killed,
        kill_reason=state.kill_reason, positions=positions, bars=state.bars,
        orders=state.orders, refused=state.refused,
        duplicates=checkpoint.counts.get("duplicate", 0), late=checkpoint.counts.get("late", 0),
        breaches=checkpoint.breaches, model=checkpoint.model,
        recent_fills=checkpoint.recent_fills)


class LiveServer:
    """The ``LiveSubject`` handlers; ``start`` gives them the executor's connection."""

    def __init__(self) -> None:
        self.bus: Bus | None = None

    async def start(self, bus: Bus) -> None:
        self.bus = bus

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(LiveSubject.START.value, self.start_strategy, StartRequest),
                Endpoint(LiveSubject.STOP.value, self.stop_strategy, StrategyRequest),
                Endpoint(LiveSubject.KILL.value, self.kill_strategy, StrategyRequest),
                Endpoint(LiveSubject.STATUS.value, self.status, StrategyRequest),
                Endpoint(LiveSubject.LIST.value, self.list, Empty)]

    def _records(self, ctx: Context) -> Records:
        """The strategies' records, read and written with the caller's role (the service's
        own connection alone may only read)."""
        assert self.bus is not None
        return Records(StateClient(self.bus, headers=ctx.outgoing_headers()),
                       settings().live_namespace)

    async def _running(self, task_id: str, ctx: Context) -> bool:
        if not task_id:
            return False
        assert self.bus is not None
        try:
            record = await ExecutorClient(self.bus, headers=ctx.outgoing_headers()).get(task_id)
        except NotFound:
            return False
        return record.status not in TERMINAL

    async def _ensure_runner(self, records: Records, record: SpecRecord,
                             revision: int | None, ctx: Context) -> SpecRecord:
        """Submit a runner task unless one is alive; the record names it (compare-and-set, so
        two concurrent starts submit at most one runner that owns the strategy)."""
        assert self.bus is not None
        if await self._running(record.task_id, ctx):
            await records.put_spec(record, expected_revision=revision)
            return record
        # Claimed first (no owner yet: a runner that starts now waits), then owned.
        unowned = msgspec.structs.replace(record, task_id="")
        claimed = await records.put_spec(unowned, expected_revision=revision)
        reply = await ExecutorClient(self.bus, headers=ctx.outgoing_headers()).submit(
            TASK_TYPE, LiveStrategyInput(name=record.spec.name), priority="high")
        owned = msgspec.structs.replace(record, task_id=reply.task_id)
        await records.put_spec(owned, expected_revision=claimed)
        return owned

    async def start_strategy(self, req: StartRequest, ctx: Context) -> StrategyStatus:
        records = self._records(ctx)
        try:
            current, revision = await records.spec(req.spec.name)
            task_id = current.task_id
        except NotFound:
            revision, task_id = 0, ""
        record = SpecRecord(spec=req.spec, desired="running", task_id=task_id)
        with contextlib.suppress(RevisionConflict):  # a concurrent start won: its runner runs
            record = await self._ensure_runner(records, record, revision, ctx)
        return status_of(record, await records.checkpoint(req.spec.name))

    async def _command(self, req: StrategyRequest, desired: Desired, ctx: Context
                       ) -> StrategyStatus:
        records = self._records(ctx)
        current, revision = await records.spec(req.name)
        record = msgspec.structs.replace(current, desired=desired, reason=req.reason)
        if desired == "killed":  # flattening needs a runner, even for a stopped strategy
            record = await self._ensure_runner(records, record, revision, ctx)
        else:
            await records.put_spec(record, expected_revision=revision)
        return status_of(record, await records.checkpoint(req.name))

    async def stop_strategy(self, req: StrategyRequest, ctx: Context) -> StrategyStatus:
        return await self._command(req, "stopped", ctx)

    async def kill_strategy(self, req: StrategyRequest, ctx: Context) -> StrategyStatus:
        return await self._command(req, "killed", ctx)

    async def status(self, req: StrategyRequest, ctx: Context) -> StrategyStatus:
        records = self._records(ctx)
        record, _ = await records.spec(req.name)
        return status_of(record, await records.checkpoint(req.name))

    async def list(self, req: Empty, ctx: Context) -> StrategyList:
        records = self._records(ctx)
        names = sorted({k.key.rsplit(".", 1)[0] async for k in
                        records.state.keys(records.namespace) if k.key.endswith(".spec")})
        out = []
        for name in names:
            record, _ = await records.spec(name)
            out.append(status_of(record, await records.checkpoint(name)))
        return StrategyList(strategies=out)

