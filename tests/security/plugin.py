"""A task the secured deployment's executors load: it moves ``production`` exactly as the
``sweep`` task (``promote: true``) and the ``promote_if_better`` pipeline step do, through
``services.executor.plugins.quant.tasks.sweep.promote_if_better``. Whatever it can do, it
does with the role of whoever submitted it."""

from __future__ import annotations

from typing import Any

import msgspec

from services.executor.plugins.quant.tasks.sweep import promote_if_better
from shared.tasks import TaskContext, task


class PromoteInput(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    version: int


@task("promote_as_submitter", input=PromoteInput, max_attempts=1)
async def promote_as_submitter(inp: PromoteInput, ctx: TaskContext) -> dict[str, Any]:
    return await promote_if_better(ctx, inp.model, inp.version, 1.0, metric="sharpe", hib=True,
                                   min_improvement=0.0, why="security test")


TASKS = [promote_as_submitter]
