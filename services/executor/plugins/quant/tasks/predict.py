"""``predict`` as a task: the same scoring as ``executor.quant.predict`` (the plugin's scorer and
its caches when the task runs on the executor's connection), for callers that want a task
record or a workflow node rather than a request/reply."""

from __future__ import annotations

import contextlib

import msgspec
from nats.aio.msg import Msg

from services.executor.plugins.quant.server.scorer import Scorer
from services.executor.plugins.quant.server.service import QuantServer
from services.executor.plugins.quant.tasks.common import settings
from shared.bus import Bus
from shared.contracts.quant import PredictReply, PredictRequest
from shared.contracts.registry import RegistryEvent
from shared.subjects import MODEL_EVENTS
from shared.tasks import TaskContext, task

_scorers: dict[int, Scorer] = {}
_event = msgspec.json.Decoder(RegistryEvent)


def share(bus: Bus, server: QuantServer) -> None:
    """Use the endpoint's scorer for tasks running on ``bus`` (one model cache per process)."""
    if server.scorer is not None:
        _scorers[id(bus)] = server.scorer


async def scorer_for(bus: Bus) -> Scorer:
    """This connection's scorer, following model events from its first use."""
    found = _scorers.get(id(bus))
    if found is None:
        found = _scorers[id(bus)] = Scorer(bus, settings())

        async def on_event(msg: Msg, s: Scorer = found) -> None:
            with contextlib.suppress(msgspec.DecodeError):
                s.models.on_event(_event.decode(msg.data))

        await bus.nc.subscribe(MODEL_EVENTS, cb=on_event)
    return found


@task("predict", input=PredictRequest, timeout_s=300, max_attempts=3)
async def predict(inp: PredictRequest, ctx: TaskContext) -> PredictReply:
    """Score a registered model on the latest bar of each symbol (dataset or sent bars)."""
    return await (await scorer_for(ctx.bus)).predict(inp, headers=ctx.headers())
