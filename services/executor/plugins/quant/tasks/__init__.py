"""The quant task types, a plugin of the executor (entry point ``quantops.tasks``: ``quant``).

    validate_dataset  a dataset selection's validation report
    train_model       walk-forward training, registered with its evaluation (ensembles too)
    backtest          a registered version or a rule-based strategy, with costs
    predict           latest-bar predictions of a model (also ``executor.quant.predict``)
    sweep             hyperparameter search over child train_model tasks, narrowing rounds
    run_pipeline      a declarative pipeline as an executor workflow of pipeline_step tasks
    pipeline_step     one step of such a workflow

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
    from services.executor.plugins.quant.server.service import QuantServer
    from services.executor.plugins.quant.tasks.common import configure
    from services.executor.plugins.quant.tasks.predict import share

    cfg = settings.quant
    configure(cfg)
    if not cfg.serve:
        return Plugin(name="quant", tasks=TASKS)
    server = QuantServer(cfg)

    async def start(bus: Bus) -> None:
        await server.start(bus)
        share(bus, server)  # the predict task uses the same caches

    return Plugin(name="quant", tasks=TASKS, endpoints=server.endpoints(), start=start,
                  stop=server.stop)
