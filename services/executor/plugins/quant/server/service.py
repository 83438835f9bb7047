"""``executor.quant.*``: predictions, trial history, pipeline templates and a version's
performance (curves, folds, backtests), served by every executor process that loads the quant
plugin (queue group ``executor``, so replicas share the load).

The plugin (``services.executor.plugins.quant.tasks:plugin``) hands the executor a
``shared.tasks.Plugin``: the task types, these handlers as ``Endpoint``s, and ``start``/``stop``
hooks. ``start`` gets the executor's own connection: it builds the scorer (model and feature
caches) and follows model and dataset events so that promotions swap models without a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from quant.history import analyse
from quant.pipelines import TEMPLATES
from quant.recipe import higher_is_better
from services.executor.plugins.quant.server.performance_view import PerformanceView
from services.executor.plugins.quant.server.scorer import Scorer
from services.executor.plugins.quant.tasks.records import load_trials
from shared.bus import Bus, Context, flush
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.base import Empty
from shared.contracts.datasets import DatasetEvent
from shared.contracts.quant import (
    PerformanceReply,
    PerformanceRequest,
    PredictReply,
    PredictRequest,
    TemplateInfo,
    TemplatesReply,
    TrialsReply,
    TrialsRequest,
)
from shared.contracts.registry import RegistryEvent
from shared.logs import swallowed
from shared.roles import Role
from shared.settings import QuantSettings
from shared.subjects import DATASET_EVENTS, MODEL_EVENTS, QuantSubject
from shared.tasks import Endpoint

log = logging.getLogger(__name__)
_model_event = msgspec.json.Decoder(RegistryEvent)
_dataset_event = msgspec.json.Decoder(DatasetEvent)


class QuantServer:
    """The ``QuantSubject`` handlers; ``start`` follows model and dataset events."""

    def __init__(self, settings: QuantSettings) -> None:
        self.settings = settings
        self.bus: Bus | None = None
        self.scorer: Scorer | None = None
        self._subs: list[Subscription] = []

    async def start(self, bus: Bus) -> None:
        self.bus = bus
        self.scorer = Scorer(bus, self.settings)
        self._subs.append(await bus.nc.subscribe(MODEL_EVENTS, cb=self._on_model_event))
        self._subs.append(await bus.nc.subscribe(DATASET_EVENTS, cb=self._on_dataset_event))
        await flush(bus.nc)

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint(QuantSubject.PREDICT.value, self.predict, PredictRequest),
                Endpoint(QuantSubject.TRIALS.value, self.trials, TrialsRequest),
                Endpoint(QuantSubject.TEMPLATES.value, self.templates, Empty),
                Endpoint(QuantSubject.PERFORMANCE.value, self.performance, PerformanceRequest)]

    async def stop(self) -> None:
        for sub in self._subs:
            with swallowed(log, "unsubscribing the prediction server", level=logging.DEBUG):
                await sub.unsubscribe()
        if self.scorer is not None:
            await self.scorer.models.close()

    async def predict(self, req: PredictRequest, ctx: Context) -> PredictReply:
        assert self.scorer is not None
        if req.write_signals:
            ctx.require(Role.OPERATOR, "write signals")
        return await self.scorer.predict(req, headers=ctx.outgoing_headers())

    async def trials(self, req: TrialsRequest, ctx: Context) -> TrialsReply:
        assert self.bus is not None
        records = await load_trials(self.bus, req.task_type, req.group, last=req.last)
        hib = req.higher_is_better if req.higher_is_better is not None \
            else higher_is_better(req.metric)
        return await asyncio.to_thread(
            analyse, records, task_type=req.task_type, group=req.group, metric=req.metric,
            higher_is_better=hib, window=req.window, parameter=req.parameter)

    async def templates(self, req: Empty, ctx: Context) -> TemplatesReply:
        return TemplatesReply(templates=[
            TemplateInfo(name=t.name, description=t.description,
                         steps=[msgspec.to_builtins(s) for s in t.steps])
            for t in TEMPLATES.values()])

    async def performance(self, req: PerformanceRequest, ctx: Context) -> PerformanceReply:
        assert self.bus is not None
        return await PerformanceView(
            RegistryClient(self.bus, headers=ctx.outgoing_headers()), StateClient(self.bus),
            backtests_namespace=self.settings.backtests_namespace).reply(req)

    async def _on_model_event(self, msg: Msg) -> None:
        if self.scorer is None:
            return
        try:
            self.scorer.models.on_event(_model_event.decode(msg.data))
        except msgspec.DecodeError:
            log.warning("unreadable model event", extra={"subject": msg.subject})

    async def _on_dataset_event(self, msg: Msg) -> None:
        if self.scorer is None:
            return
        with contextlib.suppress(msgspec.DecodeError):
            self.scorer.on_dataset_event(_dataset_event.decode(msg.data))

    def stats(self) -> dict[str, Any]:
        return self.scorer.models.stats() if self.scorer else {}
