"""A training task submitted over HTTP is one trace in Jaeger: the gateway's request, the
submission, the executor's run (later, in another process), its steps, the registry's
registration with its SQL and artifact upload, and the state write of its trial record."""

from __future__ import annotations

import httpx

from tests.gateway_auth import admin_headers
from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.support import System, eventually

SERVER = 2
TRAIN = {"dataset": "demo-us-stocks", "symbols": ["IBM"], "start": "2008-01-01",
         "end": "2011-12-31", "estimator": {"name": "ridge"},
         "walk_forward": {"n_splits": 3, "min_train_size": 252}}


async def test_training_task_is_one_trace_across_all_four_services(
    system: System, unique: str
) -> None:
    otlp = system.otlp
    assert isinstance(otlp, OtlpReceiver)
    cid = f"train-trace-{unique}"
    headers = {**admin_headers(system.data_dir), "X-Correlation-ID": cid}
    async with httpx.AsyncClient(base_url=system.gateway_url, headers=headers,
                                 timeout=60) as http:
        assert (await http.post("/v1/datasets/_demo")).status_code == 200
        body = {"type": "train_model",
                "input": {**TRAIN, "model_name": f"trace-{unique}"}}
        submitted = await http.post("/v1/tasks", json=body)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]

        async def finished() -> dict[str, object] | None:
            record: dict[str, object] = (await http.get(f"/v1/tasks/{task_id}")).json()
            return record if record["status"] not in ("queued", "running") else None

        record = await eventually(finished, timeout_s=120, interval_s=0.2,
                                  what=f"task {task_id} finished")
    assert record.get("status") == "succeeded", record

    root = _root_span(otlp, cid, "POST /v1/tasks")
    wanted = {"quantops-gateway", "quantops-executor", "quantops-registry", "quantops-state"}
    steps = {"task train_model run", "data validation", "walk-forward fold 1/3",
             "final model fit", "artifact upload"}

    def complete(_: list[ReceivedSpan]) -> bool:
        # Each process exports on its own schedule (the run span ends, and is sent, after its
        # children), so wait for everything asserted below rather than for any one marker.
        spans = otlp.trace(root.trace_id)
        names = {s.name for s in spans}
        ids = {s.span_id for s in spans}
        return (wanted <= {s.service for s in spans} and steps <= names
                and any(n.startswith("sqlite") for n in names)
                and any(s.name.startswith("state.kv.put") for s in spans)
                and all(not s.parent_id or s.parent_id in ids for s in spans))

    otlp.wait_for(complete, timeout_s=30)
    spans = otlp.trace(root.trace_id)
    names = {s.name for s in spans}
    assert wanted <= {s.service for s in spans}, {s.service for s in spans}
    assert steps <= names, steps - names
    assert any(n.startswith("sqlite") for n in names)
    assert any(s.name.startswith("state.kv.put") and s.service == "quantops-state"
               for s in spans)
    # Parent links are intact: every span but the root hangs off a span of this trace.
    ids = {s.span_id for s in spans}
    orphans = [s.name for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans, orphans


def _root_span(otlp: OtlpReceiver, cid: str, name: str) -> ReceivedSpan:
    def found(spans: list[ReceivedSpan]) -> bool:
        return any(s.kind == SERVER and s.name == name
                   and s.attributes.get("quantops.correlation_id") == cid for s in spans)

    spans = otlp.wait_for(found, timeout_s=15)
    return next(s for s in spans if s.kind == SERVER and s.name == name
                and s.attributes.get("quantops.correlation_id") == cid)
