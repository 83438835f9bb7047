"""Every route of the gateway, called with a valid request by an admin, against the real
services under the real generated NATS permissions (``conftest``): no answer is a 5xx, the
answers are the successes listed, and nats-server logs no permissions violation meanwhile.

The route table is the app's own (its route modules, as ``create_app`` mounts them): a route
added without a request here fails ``test_the_sweep_covers_the_route_table``. A grant the
gateway lacks shows up here as a 5xx and a violation in the server's log: this is how the
snapshot routes, which once always failed under authorisation, are covered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar

from services.gateway.app import ROUTE_MODULES, route_handlers
from tests.deployment import Deployment
from tests.support import eventually_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SKIPPED_METHODS = {"OPTIONS", "HEAD"}  # Litestar's own answers, no handler of ours
PASSWORD = "sweep-password-0001"
TRAIN = {"symbols": ["IBM", "MSFT"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 2, "min_train_size": 252},
         "estimator": {"name": "ridge"}}


def route_table() -> set[tuple[str, str]]:
    """``(method, path template)`` of every route the gateway's modules declare."""
    app = Litestar(route_handlers=[r for m in ROUTE_MODULES for r in m.ROUTES],
                   openapi_config=None)
    return {(method, path) for path, handler in route_handlers(app)
            for method in getattr(handler, "http_methods", ()) if method not in SKIPPED_METHODS}


@dataclass
class Sweep:
    """Calls routes by template, records what each answered."""

    http: httpx.Client
    answers: dict[tuple[str, str], int] = field(default_factory=dict)

    def __call__(self, method: str, template: str, *args: str, ok: Callable[[int], bool] = (
            lambda s: 200 <= s < 300), **kwargs: Any) -> httpx.Response:
        path = _fill(template, args)
        r = self.http.request(method, path, **kwargs)
        self._record(method, template, r.status_code, ok, r.text)
        return r

    @contextmanager
    def stream(self, template: str, *args: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """An SSE route: the status line and headers, then closed."""
        with self.http.stream("GET", _fill(template, args), **kwargs) as r:
            self._record("GET", template, r.status_code, lambda s: s == 200, "")
            yield r

    def _record(self, method: str, template: str, status: int, ok: Callable[[int], bool],
                text: str) -> None:
        self.answers[(method, template)] = status
        print(f"{status} {method} {template}")
        assert status < 500, f"{method} {template}: {status} {text[:500]}"
        assert ok(status), f"{method} {template}: {status} {text[:500]}"

    def task(self, body: dict[str, Any], *, until: str = "done", timeout_s: float = 120.0
             ) -> dict[str, Any]:
        submitted = self("POST", "/v1/tasks", json=body)
        task_id = submitted.json()["task_id"]

        def finished() -> dict[str, Any] | None:
            record: dict[str, Any] = self.http.get(f"/v1/tasks/{task_id}").json()
            done = record["status"] not in ("queued", "running")
            return record if (done if until == "done" else record["status"] == until) else None

        return eventually_sync(finished, timeout_s=timeout_s, interval_s=0.2,
                               what=f"task {body['type']} {task_id} {until}")


_PARAM = re.compile(r"\{[^}]+\}")


def _fill(template: str, args: tuple[str, ...]) -> str:
    values = iter(args)
    return _PARAM.sub(lambda _: next(values), template)


@dataclass
class Swept:
    answers: dict[tuple[str, str], int]
    violations: list[str]  # what nats-server logged while the sweep ran


def test_the_sweep_covers_the_route_table(swept: Swept) -> None:
    missing = sorted(route_table() - set(swept.answers))
    assert not missing, f"routes the sweep does not call: {missing}"


def test_no_permissions_violation_during_the_sweep(swept: Swept) -> None:
    assert swept.answers
    assert swept.violations == [], "\n".join(swept.violations)


@pytest.fixture(scope="module")
def swept(ready: Deployment) -> Swept:
    """Run the sweep once: its answers by route, and the violations it caused (the attack
    tests cause theirs on purpose, so only lines logged meanwhile count)."""
    before = len(ready.violations())
    with ready.http() as http:
        http.timeout = httpx.Timeout(120.0)
        sweep = Sweep(http)
        unique = uuid.uuid4().hex[:8]
        _public(sweep)
        user = _users_and_sessions(sweep, ready, unique)
        _state(sweep, unique)
        _datasets(sweep, unique)
        _models(sweep, unique)
        _quant_and_live(sweep, unique)
        _tasks(sweep)
        sweep("DELETE", "/v1/users/{name:str}", user)
    return Swept(sweep.answers, ready.violations()[before:])


def _public(sweep: Sweep) -> None:
    for path in ("/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/asyncapi.json",
                 "/favicon.ico"):
        sweep("GET", path)
    sweep("GET", "/static/{file_path:path}", "app.js")


def _users_and_sessions(sweep: Sweep, ready: Deployment, unique: str) -> str:
    user = f"sweep{unique}"
    sweep("POST", "/v1/users", json={"name": user, "role": "admin", "password": PASSWORD})
    sweep("GET", "/v1/users")
    sweep("GET", "/v1/users/{name:str}", user)
    sweep("PATCH", "/v1/users/{name:str}", user, json={"role": "admin"})
    sweep("PUT", "/v1/users/{name:str}/password", user, json={"new_password": PASSWORD + "x"})
    anonymous = {"Authorization": ""}
    tokens = sweep("POST", "/v1/auth/login", headers=anonymous,
                   json={"username": user, "password": PASSWORD + "x"}).json()
    tokens = sweep("POST", "/v1/auth/refresh", headers=anonymous,
                   json={"refresh_token": tokens["refresh_token"]}).json()
    session = {"Authorization": f"Bearer {tokens['access_token']}"}
    sweep("GET", "/v1/me", headers=session)
    sweep("POST", "/v1/auth/bus-token", headers=session)
    sweep("POST", "/v1/auth/stream-token", headers=session)
    sweep("POST", "/v1/auth/logout", headers=session)
    with ready.http() as http:
        again = http.post("/v1/auth/login", headers=anonymous,
                          json={"username": user, "password": PASSWORD + "x"}).json()
    sweep("PUT", "/v1/me/password", headers={"Authorization": f"Bearer {again['access_token']}"},
          json={"new_password": PASSWORD + "y", "current_password": PASSWORD + "x"})
    key = sweep("POST", "/v1/keys", json={"label": "sweep"}).json()
    sweep("GET", "/v1/keys")
    sweep("DELETE", "/v1/keys/{key_id:str}", key["info"]["id"])
    return user


def _state(sweep: Sweep, unique: str) -> None:
    ns = f"sweep{unique}"
    sweep("PUT", "/v1/state/_namespaces/{namespace:str}", ns, json={"schema_version": 1})
    sweep("PUT", "/v1/state/{namespace:str}/{key:path}", ns, "k", json={"value": {"v": 1}})
    sweep("GET", "/v1/state/{namespace:str}/{key:path}", ns, "k")
    sweep("GET", "/v1/state/{namespace:str}", ns)
    sweep("GET", "/v1/state/_history/{namespace:str}/{key:path}", ns, "k")
    sweep("GET", "/v1/state/_namespaces")
    sweep("GET", "/v1/state/_namespaces/{namespace:str}", ns)
    with sweep.stream("/v1/state/_watch/{namespace:str}", ns):
        pass
    snapshot = sweep("POST", "/v1/state/_snapshots", json={"namespace": ns}).json()["name"]
    sweep("GET", "/v1/state/_snapshots")
    data = sweep("GET", "/v1/state/_snapshots/{name:str}", snapshot).content
    uploaded = f"uploaded-{unique}.qsnap"
    sweep("PUT", "/v1/state/_snapshots/{name:str}", uploaded, content=data)
    sweep("POST", "/v1/state/_snapshots/{name:str}/restore", uploaded, json={"namespace": ns})
    sweep("POST", "/v1/state/_cleanup/{namespace:str}", ns,
          json={"older_than_s": 3600, "dry_run": True})
    sweep("DELETE", "/v1/state/{namespace:str}/{key:path}", ns, "k")


def _datasets(sweep: Sweep, unique: str) -> None:
    demo = sweep("POST", "/v1/datasets/_demo").json()
    sweep("GET", "/v1/datasets")
    sweep("GET", "/v1/datasets/{ref:str}", demo["name"])
    data = sweep("GET", "/v1/datasets/{ref:str}/file", demo["name"]).content
    sweep("PUT", "/v1/datasets/{ref:str}", f"sweep-{unique}", content=data,
          params={"format": "csv"})


def _upload(sweep: Sweep, model: str, data: bytes) -> dict[str, Any]:
    ticket = sweep("POST", "/v1/models/{name:str}/uploads", model,
                   json={"spec": {"format": "binary", "metrics": {"sharpe": len(data)}}}).json()
    return sweep("PUT", "/v1/models/{name:str}/uploads/{upload_id:str}", model,
                 ticket["upload_id"], content=data).json()


def _models(sweep: Sweep, unique: str) -> None:
    model = f"sweep-{unique}"
    _upload(sweep, model, b"weights one")
    ticket = sweep("POST", "/v1/models/{name:str}/uploads", model,
                   json={"spec": {"format": "binary"}}).json()
    sweep("DELETE", "/v1/models/{name:str}/uploads/{upload_id:str}", model, ticket["upload_id"])
    _upload(sweep, model, b"weights two, longer")
    sweep("GET", "/v1/models")
    sweep("GET", "/v1/models/{name:str}/versions", model)
    sweep("GET", "/v1/models/{name:str}/versions/{ref:str}", model, "1")
    assert sweep("GET", "/v1/models/{name:str}/versions/{ref:str}/artifact", model,
                 "1").content == b"weights one"
    sweep("GET", "/v1/models/{name:str}/compare", model, params={"versions": ["1", "2"]})
    sweep("PUT", "/v1/models/{name:str}/aliases/{alias:str}", model, "staging",
          json={"version": 1})
    sweep("GET", "/v1/models/{name:str}/aliases", model)
    sweep("DELETE", "/v1/models/{name:str}/aliases/{alias:str}", model, "staging")
    sweep("POST", "/v1/models/{name:str}/promote", model, json={"version": 1})
    sweep.http.post(f"/v1/models/{model}/promote", json={"version": 2})
    sweep("POST", "/v1/models/{name:str}/rollback", model, json={})
    sweep("GET", "/v1/models/{name:str}/audit", model)
    sweep("POST", "/v1/models/{name:str}/cleanup", model, json={"keep": 1, "dry_run": True})
    sweep("DELETE", "/v1/models/{name:str}/versions/{ref:str}", model, "2")


def _quant_and_live(sweep: Sweep, unique: str) -> None:
    model = f"sweep-ridge-{unique}"
    trained = sweep.task({"type": "train_model", "input": {**TRAIN, "model_name": model}})
    assert trained["status"] == "succeeded", trained
    version = str(trained["result"]["version"])
    sweep.http.post(f"/v1/models/{model}/promote", json={"version": int(version)})
    ref = f"{model}@production"
    sweep("GET", "/v1/models/{name:str}/versions/{ref:str}/performance", model, version)
    sweep("POST", "/v1/predict", json={"model": ref, "symbols": ["IBM"]})
    sweep("POST", "/v1/signals", json={"model": ref, "symbols": ["IBM"]})
    sweep("GET", "/v1/trials", params={"task_type": "train_model", "group": model,
                                       "metric": "sharpe"})
    sweep("GET", "/v1/pipelines/templates")
    for name in (f"sweep-a-{unique}", f"sweep-b-{unique}"):
        sweep("POST", "/v1/strategies", json={"name": name, "model": ref, "symbols": ["IBM"]})
    sweep("GET", "/v1/strategies")
    sweep("GET", "/v1/strategies/{name:str}", f"sweep-a-{unique}")
    with sweep.stream("/v1/strategy-events"):
        pass
    sweep("POST", "/v1/strategies/{name:str}/stop", f"sweep-a-{unique}", json={"reason": "sweep"})
    sweep("POST", "/v1/strategies/{name:str}/kill", f"sweep-b-{unique}", json={"reason": "sweep"})


def _tasks(sweep: Sweep) -> None:
    sweep("GET", "/v1/task-types")
    done = sweep.task({"type": "noop", "input": {}})
    sweep("GET", "/v1/tasks")
    sweep("GET", "/v1/tasks/{task_id:str}", done["id"])
    with sweep.stream("/v1/tasks/{task_id:str}/events", done["id"]):
        pass
    with sweep.stream("/v1/task-events"):
        pass
    sweep("GET", "/v1/tasks/activity", params={"window_s": 3600, "bucket_s": 60})
    sweep("GET", "/v1/tasks/failed-summary", params={"window_s": 3600})
    sweep("GET", "/v1/tasks/queue")
    slow = sweep.task({"type": "sleep", "input": {"seconds": 60}}, until="running")
    sweep("POST", "/v1/tasks/{task_id:str}/cancel", slow["id"], json={"reason": "sweep"})
    dead = sweep.task({"type": "fail", "input": {"retryable": True}, "max_attempts": 1})
    assert dead["status"] == "dead", dead
    sweep("GET", "/v1/dead-letters")
    sweep("POST", "/v1/dead-letters/{task_id:str}/resubmit", dead["id"], json={})
    workflow = sweep("POST", "/v1/workflows", json={"tasks": [
        {"name": "a", "type": "sleep", "input": {"seconds": 60}}]}).json()["workflow"]
    sweep("GET", "/v1/workflows/{workflow_id:str}", workflow["id"])
    sweep("POST", "/v1/workflows/{workflow_id:str}/cancel", workflow["id"],
          json={"reason": "sweep"})
    sweep("POST", "/v1/tasks/purge", json={"older_than_s": 0, "status": ["succeeded"]})
