"""The quant task types, a plugin of the executor (entry point ``quantops.tasks``: ``quant``).

    validate_dataset  a dataset selection's validation report
    train_model       walk-forward training, registered with its evaluation (ensembles too)
    backtest          a registered version or a rule-based strategy, with costs
    predict           latest-bar predictions of a model (also ``executor.quant.predict``)
    sweep             hyperparameter search over child train_model tasks, narrowing rounds
    run_pipeline      a declarative pipeline as an executor workflow of pipeline_step tasks
    pipeline_step     one step of such a workflow
    live_strategy     one live strategy, following bars until stopped (``executor.live.*``)
    replay_bars       a dataset published to the market-data stream as a live feed

The plugin also serves the ``executor.quant.*`` subjects
(``services.executor.plugins.quant.server``): predictions from cached models, trial history,
templates, from every executor process.
"""

from __future__ import annotations

from typing import Any

from services.executor.plugins.quant.tasks.backtest import backtest_task
from services.executor.plugins.quant.tasks.pipeline import run_pipeline
from services.executor.plugins.quant.tasks.predict import predict
from services.executor.plugins.quant.tasks.steps import pipeline_step
from services.executor.plugins.quant.tasks.sweep import sweep_task
from services.executor.plugins.quant.tasks.train import train_model
from services.executor.plugins.quant.tasks.validate import validate_dataset
from shared.bus import Bus
from shared.settings import Settings
from shared.tasks import Plugin, TaskType

TASKS: list[TaskType[Any]] = [validate_dataset, train_model, backtest_task, predict,
                              sweep_task, run_pipeline, pipeline_step]


def plugin(settings: Settings) -> Plugin:
    """The entry point: task types, endpoints, and the hooks that give the predict path its
    caches on the executor's own connection (``QUANTOPS_QUANT_SERVE=false``: tasks only)."""
    # Imported here, not above: the live modules build on this package's ``common``.
    from services.executor.plugins.quant.live.marketdata import ensure_bars_stream
    from services.executor.plugins.quant.live.replay import replay_bars
    from services.executor.plugins.quant.live.service import LiveServer, live_strategy
    from services.executor.plugins.quant.server.service import QuantServer
    from services.executor.plugins.quant.tasks.common import configure
    from services.executor.plugins.quant.tasks.predict import share

    cfg = settings.quant
    configure(cfg)
    tasks = [*TASKS, live_strategy, replay_bars]
    if not cfg.serve:
        return Plugin(name="quant", tasks=tasks)
    server, live = QuantServer(cfg), LiveServer()

    async def start(bus: Bus) -> None:
        await server.start(bus)
        share(bus, server)  # the predict task and live strategies use the same caches
        await ensure_bars_stream(bus.nc.jetstream(), max_age_s=cfg.bars_max_age_s,
                                 duplicate_window_s=cfg.bars_duplicate_window_s)
        await live.start(bus)

    return Plugin(name="quant", tasks=tasks, endpoints=server.endpoints() + live.endpoints(),
                  start=start, stop=server.stop)
