"""A live strategy follows its alias: promoting another version moves the strategy to it between
two bars, with no bar lost. And each bar is one trace from the feed to its fills: the bar's
``traceparent`` is the parent of the runner's ``live.bar`` span, whose ``live.fill`` spans are
exported by the executor under the same trace id."""

from __future__ import annotations

import secrets

import msgspec
import pytest

from services.executor.plugins.quant.live.feeds import ReplaySource, frame_bars, pump
from services.executor.plugins.quant.live.marketdata import bar_id, ensure_bars_stream
from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.clients.live import LiveClient
from shared.clients.registry import RegistryClient
from shared.contracts.executor import TaskStatus
from shared.contracts.live import StrategySpec
from shared.subjects import Header, bar_subject
from tests.live import TRAIN, fills, renamed, trained_model, wait_for
from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.support import System

pytestmark = pytest.mark.timeout(300)
WARMUP = 300


async def test_promotion_swaps_the_model_and_each_bar_is_one_trace(
        system: System, bus: Bus, unique: str) -> None:
    otlp = system.otlp
    assert isinstance(otlp, OtlpReceiver)
    model = f"swap-{unique}"
    ref = await trained_model(bus, model)
    executor = ExecutorClient(bus)
    second = await executor.submit("train_model", {
        **TRAIN, "model_name": model, "estimator": {"name": "ridge",
                                                    "hyperparameters": {"alpha": 1e4}}})
    assert (await executor.wait(second.task_id, timeout_s=120)).status == TaskStatus.SUCCEEDED
    frame, names = renamed(unique[:8], ["IBM"])
    name, symbol = f"swap-{unique[:8]}", names["IBM"]
    js = bus.nc.jetstream()
    await ensure_bars_stream(js)
    await pump(ReplaySource(frame.head(WARMUP)), js)
    await LiveClient(bus).start(StrategySpec(name=name, model=ref, symbols=[symbol]))
    await wait_for(bus, name, lambda s: s.bars == WARMUP)

    traces: dict[str, str] = {}  # bar timestamp -> trace id
    promoted_at = ""
    for bar in frame_bars(frame.iloc[WARMUP:WARMUP + 120]):
        trace_id = secrets.token_hex(16)
        stamp = bar.timestamp.isoformat()
        traces[stamp] = trace_id
        headers = {Header.MSG_ID.value: bar_id(bar),
                   "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        await js.publish(bar_subject(symbol), msgspec.json.encode(bar),
                         headers=headers)
        status = await wait_for(bus, name, lambda s, t=stamp: s.last_timestamp == t)
        if not promoted_at and len(traces) == 20:
            await RegistryClient(bus).promote(model, 2)
            promoted_at = stamp
        if promoted_at and status.model == f"{model}@2":
            break
    assert status.model == f"{model}@2", "the strategy never moved to the promoted version"
    assert status.bars == WARMUP + len(traces)  # no bar lost to the swap

    events = await fills(bus, name)
    traded = [e for e in events if e.timestamp in traces]
    assert traded, "no bar traded: nothing to trace"
    assert {e.model for e in traded if e.timestamp <= promoted_at} <= {f"{model}@1"}
    trace_id = traces[traded[0].timestamp]

    def complete(_: list[ReceivedSpan]) -> bool:
        names = {s.name for s in otlp.trace(trace_id)}
        return {"live.bar", "live.fill"} <= names

    otlp.wait_for(complete, timeout_s=20)
    spans = otlp.trace(trace_id)
    bar_span = next(s for s in spans if s.name == "live.bar")
    assert bar_span.service == "quantops-executor"
    assert bar_span.attributes["strategy"] == name
    assert all(s.parent_id == bar_span.span_id for s in spans if s.name == "live.fill")
    stopped = await LiveClient(bus).stop(name)  # its runner holds an executor slot until then
    ended = await executor.wait(stopped.task_id, timeout_s=30)
    assert ended.status == TaskStatus.SUCCEEDED, ended.error
