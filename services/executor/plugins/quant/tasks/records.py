"""What the quant tasks leave behind: registered versions with their metadata and lineage, the
evaluation artifact beside each, and trial records in the state service.

Every write is keyed by the task id, so a redelivered task (its executor died) writes the same
things again instead of new ones: registrations carry the task id as idempotency key, trial
and backtest records use it in their state key.

Artifacts: the model is version N of ``<model>`` (skops); its out-of-sample evaluation
(importances, folds, equity curve, every out-of-sample prediction; JSON) is a version of the
companion model ``<model>.evaluation``, registered first so that the model's ``evaluation`` tag
can name it. Both carry the same lineage, and registry cleanup, integrity checks and downloads
work on them like on any artifact.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import msgspec

from quant.recipe import Recipe, to_hyperparameters
from services.executor.plugins.quant.tasks.common import code_version, registry, settings, state
from services.executor.plugins.quant.tasks.jobs import TrainOutput
from shared.bus import Bus
from shared.contracts.datasets import DatasetInfo
from shared.contracts.quant import TrialRecord
from shared.contracts.registry import ArtifactFormat, Lineage, VersionInfo, VersionSpec
from shared.errors import NotFound
from shared.settings import ttl_or_none
from shared.tasks import TaskContext

EVALUATION_SUFFIX = ".evaluation"
MAX_DESCRIPTION = 4000
_trial = msgspec.json.Decoder(TrialRecord)


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def _description(out: TrainOutput, recipe: Recipe, info: DatasetInfo) -> str:
    lines = [f"{recipe.estimator_label()} on {info.name or info.ref} "
             f"({', '.join(out.symbols)}, {out.data_start[:10]}..{out.data_end[:10]}, "
             f"{out.rows} rows); walk-forward {recipe.walk_forward.mode}, "
             f"{recipe.walk_forward.n_splits} folds, out-of-sample metrics"]
    if out.validation_warnings:
        lines += ["validation warnings:", *(f"- {w}" for w in out.validation_warnings)]
    if out.summary.warnings:
        lines += ["training warnings:", *(f"- {w}" for w in out.summary.warnings)]
    text = "\n".join(lines)
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 3] + "..."


def version_spec(ctx: TaskContext, out: TrainOutput, recipe: Recipe, info: DatasetInfo, *,
                 fmt: ArtifactFormat, tags: dict[str, str]) -> VersionSpec:
    return VersionSpec(
        format=fmt, trained_at=datetime.now(UTC), data_start=_when(out.data_start),
        data_end=_when(out.data_end), metrics=out.metrics, features=out.summary.features,
        hyperparameters=to_hyperparameters(recipe), tags=tags,
        lineage=Lineage(task_id=ctx.task_id, data_sha256=info.sha256,
                        code_version=code_version()),
        description=_description(out, recipe, info))


async def register_trained(ctx: TaskContext, model: str, out: TrainOutput, recipe: Recipe,
                           info: DatasetInfo, tags: dict[str, str], *, key: str = ""
                           ) -> tuple[VersionInfo, VersionInfo | None]:
    """Register the evaluation (if any) then the model; returns both versions. ``key``
    (default: the task id) makes both registrations idempotent."""
    client, key = registry(ctx), key or ctx.task_id
    tags = {"task_type": "train_model", "estimator": recipe.estimator_label()[:256],
            "target": f"{recipe.target.kind}:{recipe.target.horizon}",
            "dataset": (info.name or info.ref)[:256], "dataset_sha256": info.sha256,
            "validation_warnings": str(len(out.validation_warnings)), **tags}
    evaluation = None
    if out.evaluation:
        spec = version_spec(ctx, out, recipe, info, fmt=ArtifactFormat.JSON,
                            tags={**tags, "evaluation_of": model})
        evaluation = await client.register(model + EVALUATION_SUFFIX, out.evaluation, spec,
                                           idempotency_key=key)
        tags["evaluation"] = evaluation.ref
    spec = version_spec(ctx, out, recipe, info, fmt=ArtifactFormat.SKOPS, tags=tags)
    version = await client.register(model, out.model, spec, idempotency_key=key)
    return version, evaluation


# --- trial history --------------------------------------------------------------------------


def trial_key(record: TrialRecord) -> str:
    return f"{record.task_type}.{record.group}.{record.task_id}"


async def record_trial(ctx: TaskContext | Bus, record: TrialRecord) -> str:
    """Keep one outcome in the ``trials`` namespace; the same task id overwrites itself."""
    key = trial_key(record)
    cfg = settings()
    await state(ctx).put(cfg.trials_namespace, key, record, ttl_s=ttl_or_none(cfg.trials_ttl_s))
    return key


async def load_trials(bus: Bus, task_type: str, group: str = "", *, last: int = 50
                      ) -> list[TrialRecord]:
    """The ``last`` most recent trials of a task type (and group), oldest first."""
    client, ns = state(bus), settings().trials_namespace
    prefix = f"{task_type}.{group}." if group else f"{task_type}."
    try:
        keys = [k async for k in client.keys(ns, prefix=prefix)]
    except NotFound:
        return []
    keys.sort(key=lambda k: (k.updated_at, k.key))
    chosen = keys[-last:]
    replies = await asyncio.gather(*(client.get_reply(ns, k.key) for k in chosen),
                                   return_exceptions=True)
    records = [_trial.decode(r.value) for r in replies if not isinstance(r, BaseException)]
    return sorted(records, key=lambda r: r.at)


def now() -> float:
    return time.time()
