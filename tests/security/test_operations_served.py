"""Each operation is declared once (``shared.operations``) and served: the subjects each real
service subscribes to, as the nats-server itself reports them (``/connz?subs=1``), are exactly
the declared operations of that service, plus its health, its own inbox, and what it follows
(events, change feeds). A subject served but not declared, or declared but not served, fails."""

from __future__ import annotations

import httpx
import pytest

from shared import operations
from shared.subjects import health
from tests.deployment import Deployment
from tests.support import eventually_sync

pytestmark = [pytest.mark.slow]

#: What a service subscribes to that is not a request/reply operation.
FOLLOWS = ("_INBOX", "events.", "state.changes.", "registry.changes.", "$JS.", "$KV.", "$O.")


def _served(ready: Deployment) -> dict[str, set[str]]:
    url = f"http://127.0.0.1:{ready.nats.monitor_port}/connz?subs=1&limit=1024"
    out: dict[str, set[str]] = {}
    for conn in httpx.get(url, timeout=5).json()["connections"]:
        name = conn.get("name", "")
        if name.startswith("quantops-"):
            out.setdefault(name.removeprefix("quantops-"), set()).update(
                s for s in conn.get("subscriptions_list", []) if not s.startswith(FOLLOWS))
    return out


@pytest.mark.parametrize("service", ["state", "registry", "executor", "gateway"])
def test_served_subjects_are_exactly_the_declared_operations(ready: Deployment,
                                                             service: str) -> None:
    declared = {op.subject for op in operations.of_service(service)} | {health(service)}
    served = eventually_sync(lambda: _served(ready).get(service), timeout_s=30,
                             what=f"{service}'s subscriptions")
    assert sorted(served - declared) == [], "served but not declared in shared.operations"
    assert sorted(declared - served) == [], "declared in shared.operations but not served"


def test_health_reports_no_unserved_operation(ready: Deployment) -> None:
    with ready.http() as http:
        ready_doc = http.get("/readyz").json()
    for name, status in ready_doc["services"].items():
        assert "unserved" not in str(status), (name, status)
