"""``run_pipeline``: a declarative pipeline (a shipped template or a submitted JSON spec) turned
into an executor workflow, one ``pipeline_step`` task per step, wired by ``depends_on``.

Specs are data: every step's params are decoded against its kind's schema and the graph is
checked (``pipelines.validate_pipeline``) when the task is *submitted*, so an invalid pipeline
never queues; the steps run only the catalogue's code. The workflow is the executor's (status,
cancellation, failure propagation, restarts); ``run_pipeline`` returns its id at once, or waits
for it with ``wait``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from quant.pipelines import (
    PipelineSpec,
    decode_pipeline,
    template,
    topological_order,
    validate_pipeline,
)
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import WorkflowRecord, WorkflowTask
from shared.tasks import TaskContext, task

STEP_TASK = "pipeline_step"


class RunPipelineInput(msgspec.Struct, frozen=True, kw_only=True):
    """``template`` (a shipped name) or ``spec`` (a ``PipelineSpec`` as JSON); ``overrides``
    merges params into steps by id (``{"sweep": {"n_trials": 4}}``)."""

    template: Annotated[str, msgspec.Meta(max_length=100)] = ""
    spec: dict[str, Any] | None = None
    overrides: Annotated[dict[str, dict[str, Any]], msgspec.Meta(max_length=50)] = {}
    wait: bool = False
    on_failure: Literal["fail", "cancel"] = "cancel"

    def __post_init__(self) -> None:
        if bool(self.template) == (self.spec is not None):
            raise ValueError("give exactly one of template or spec")
        validate_pipeline(self.pipeline())  # PipelineError is a ValueError: refused at submit

    def pipeline(self) -> PipelineSpec:
        spec = template(self.template) if self.template else decode_pipeline(self.spec or {})
        unknown = sorted(set(self.overrides) - {s.id for s in spec.steps})
        if unknown:
            raise ValueError(f"overrides name unknown steps {unknown}")
        steps = [msgspec.structs.replace(s, params={**s.params, **self.overrides.get(s.id, {})})
                 for s in spec.steps]
        return msgspec.structs.replace(spec, steps=steps)


def workflow_tasks(spec: PipelineSpec, run_id: str) -> list[WorkflowTask]:
    """One ``pipeline_step`` node per step, in dependency order."""
    by_id = {s.id: s for s in spec.steps}
    return [WorkflowTask(name=step_id, type=STEP_TASK, depends_on=list(by_id[step_id].depends_on),
                         input={"pipeline": spec.name, "run": run_id, "step": step_id,
                                "kind": by_id[step_id].kind, "params": by_id[step_id].params})
            for step_id in topological_order(spec)]


async def _summary(client: ExecutorClient, wf: WorkflowRecord) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for node in wf.nodes:
        entry: dict[str, Any] = {"status": node.status, "task_id": node.task_id}
        if node.task_id and node.status == "succeeded":
            record = await client.get(node.task_id)
            result = record.result if isinstance(record.result, dict) else {}
            entry["summary"] = result.get("summary", {})
        steps[node.name] = entry
    return {"workflow_id": wf.id, "status": str(wf.status), "steps": steps}


@task("run_pipeline", input=RunPipelineInput, timeout_s=12 * 3600, max_attempts=2)
async def run_pipeline(inp: RunPipelineInput, ctx: TaskContext) -> dict[str, Any]:
    """Run a validated pipeline template or spec as an executor workflow."""
    spec = inp.pipeline()
    client = ExecutorClient(ctx.bus, headers=ctx.headers())
    reply = await client.submit_workflow(workflow_tasks(spec, ctx.task_id),
                                         on_failure=inp.on_failure,
                                         name=f"pipeline {spec.name}",
                                         idempotency_key=f"pipeline-{ctx.task_id}")
    out: dict[str, Any] = {"pipeline": spec.name, "workflow_id": reply.workflow.id,
                           "steps": [s.id for s in spec.steps]}
    if not inp.wait:
        return out
    await ctx.progress(0.05, f"workflow {reply.workflow.id} running")
    limit = ctx.remaining_s()
    wf = await client.wait_workflow(reply.workflow.id,
                                    timeout_s=None if limit == float("inf") else limit)
    return out | await _summary(client, wf)
