"""A finished sweep's retention policy: keep the registered versions of its best trials.

Every trial registers a model version and its evaluation (``<model>.evaluation``), so a
100-trial sweep leaves 200 versions, most of them
worse than the best few and never used. Once the sweep has chosen (and maybe promoted) its best,
the versions of its trials outside the best ``keep`` by the sweep's metric are deleted, with
their evaluations (the registry deletes a version's ``evaluation`` companion along); a version
an alias points to is never deleted (the registry refuses, and so it is kept), nor is any version
registered outside this sweep. The trial records in the ``trials`` namespace stay (they expire by
their own TTL), so the history still shows every point that was tried.
"""

from __future__ import annotations

import math
from typing import Any

from services.executor.plugins.quant.tasks.common import registry
from shared.errors import Conflict, NotFound
from shared.tasks import TaskContext


def _value(entry: dict[str, Any], metric: str, hib: bool) -> float:
    """Sort key, best first: a trial without a finite metric sorts last."""
    v = entry.get("all_metrics", {}).get(metric, math.nan)
    return (-v if hib else v) if math.isfinite(v) else math.inf


async def prune_trials(ctx: TaskContext, model: str, entries: list[dict[str, Any]], *,
                       metric: str, hib: bool, keep: int) -> list[str]:
    """Delete the versions of ``entries`` beyond the best ``keep``; marks them ``pruned`` and
    returns their refs. ``keep`` 0 keeps everything."""
    if keep <= 0:
        return []
    registered = sorted((e for e in entries if e.get("ref")),
                        key=lambda e: _value(e, metric, hib))
    client = registry(ctx)
    aliased = set((await client.aliases(model)).values())
    pruned: list[str] = []
    for entry in registered[keep:]:
        if entry.get("version") in aliased:
            continue
        reason = f"sweep {ctx.task_id}: not among its best {keep} by {metric}"
        try:
            # The registry deletes the trial's evaluation (its companion) along with it.
            reply = await client.delete(entry["ref"], reason=reason)
        except (Conflict, NotFound):  # aliased meanwhile, or already gone (a redelivery)
            continue
        entry["pruned"] = True
        pruned += reply.deleted
    return pruned
