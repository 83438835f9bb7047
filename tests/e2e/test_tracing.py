"""One HTTP request through the gateway = one trace, exported over OTLP/HTTP (what Jaeger
ingests) and decoded here from the protobuf the services actually sent."""

from __future__ import annotations

import httpx

from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.support import System

SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP SpanKind numbers


def _trace_of(otlp: OtlpReceiver, cid: str, want: int) -> list[ReceivedSpan]:
    def has_all(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.attributes.get("quantops.correlation_id") == cid]
        # Each process exports in its own batches: wait for the root and the rest.
        return len(mine) >= want and any(s.kind == SERVER for s in mine)

    spans = otlp.wait_for(has_all, timeout_s=15)
    roots = [s for s in spans if s.attributes.get("quantops.correlation_id") == cid
             and s.kind == SERVER]
    assert roots, "no gateway server span carrying the correlation id"
    return otlp.trace(roots[0].trace_id)


async def test_readyz_is_one_trace_across_gateway_and_every_service(
    system: System
) -> None:
    otlp = system.otlp
    assert isinstance(otlp, OtlpReceiver)
    cid = "trace-e2e-readyz"
    async with httpx.AsyncClient(base_url=system.gateway_url) as http:
        r = await http.get("/readyz", headers={"X-Correlation-ID": cid})
    assert r.status_code == 200, r.text
    assert r.headers["x-correlation-id"] == cid

    # gateway server span + 3 producer spans (gateway) + 3 consumer spans (one per service)
    spans = _trace_of(otlp, cid, want=7)
    assert len({s.trace_id for s in spans}) == 1
    by_id = {s.span_id: s for s in spans}
    services = {s.service for s in spans}
    assert {"quantops-gateway", "quantops-state", "quantops-registry",
            "quantops-executor"} <= services
    root = next(s for s in spans if s.kind == SERVER)
    assert root.service == "quantops-gateway" and root.parent_id == ""
    consumers = [s for s in spans if s.kind == CONSUMER]
    assert len(consumers) >= 3
    for c in consumers:
        assert c.attributes["messaging.system"] == "nats"
        assert c.attributes["quantops.correlation_id"] == cid
        producer = by_id[c.parent_id]  # parent links intact across the process boundary
        assert producer.kind == PRODUCER and producer.service == "quantops-gateway"
        assert by_id[producer.parent_id] is root


async def test_caller_traceparent_is_continued(system: System) -> None:
    otlp = system.otlp
    assert isinstance(otlp, OtlpReceiver)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
               "X-Correlation-ID": "trace-e2e-parent"}
    async with httpx.AsyncClient(base_url=system.gateway_url) as http:
        assert (await http.get("/readyz", headers=headers)).status_code == 200
    spans = _trace_of(otlp, "trace-e2e-parent", want=2)
    assert spans[0].trace_id == trace_id
    root = next(s for s in spans if s.kind == SERVER)
    assert root.parent_id == "00f067aa0ba902b7"
