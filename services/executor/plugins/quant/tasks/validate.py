"""``validate_dataset``: the validation report of a dataset selection, with the thresholds of
the caller's choice (the report stored at upload used the configured ones)."""

from __future__ import annotations

from typing import Any

from services.executor.plugins.quant.tasks.common import DataInput, cpu, load_dataset, selection
from services.executor.plugins.quant.tasks.work import validate_job
from shared.tasks import TaskContext, task


class ValidateInput(DataInput, frozen=True, kw_only=True):
    """Which data to check, and optionally ``max_abs_return`` / ``max_gap_factor``."""


@task("validate_dataset", input=ValidateInput, timeout_s=600, max_attempts=2)
async def validate_dataset(inp: ValidateInput, ctx: TaskContext) -> dict[str, Any]:
    """Validate a dataset selection: errors and warnings, with the file's row numbers."""
    info, data = await load_dataset(ctx, inp.dataset)
    report = await cpu(ctx, validate_job, data, selection(info, inp))
    return {"dataset": {"name": info.name, "sha256": info.sha256}, "ok": not report["errors"],
            **report}
