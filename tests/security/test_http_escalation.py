"""Issue 13's HTTP escalations and task escalations, through the real gateway of the secured
deployment (``conftest``): a capped API key must not become its owner, a password change must
end the sessions opened before it, and an operator must not move ``production`` through a task
(tasks act with their submitter's role)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from tests.deployment import Deployment
from tests.support import eventually_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _user(http: httpx.Client, role: str, password: str | None = None) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {"name": name, "role": role}
    if password:
        body["password"] = password
    r = http.post("/v1/users", json=body)
    assert r.status_code == 201, r.text
    return name


def _key(http: httpx.Client, user: str, role: str | None = None) -> tuple[str, str]:
    body: dict[str, Any] = {"user": user, "label": "sec"}
    if role:
        body["role"] = role
    r = http.post("/v1/keys", json=body)
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["info"]["id"]


def test_capped_key_cannot_set_its_owners_password(ready: Deployment) -> None:
    with ready.http() as admin:
        owner = _user(admin, "admin")  # no password yet, like the bootstrap admin
        capped, _ = _key(admin, owner, "viewer")
    password = secrets.token_urlsafe(16)
    with ready.http(capped) as http:
        r = http.put("/v1/me/password", json={"new_password": password})
        assert r.status_code == 403, r.text
        login = http.post("/v1/auth/login", json={"username": owner, "password": password})
        assert login.status_code == 401, login.text


def test_capped_key_cannot_revoke_its_owners_full_keys(ready: Deployment) -> None:
    with ready.http() as admin:
        owner = _user(admin, "operator")
        full, full_id = _key(admin, owner)
        capped, capped_id = _key(admin, owner, "viewer")
    with ready.http(capped) as http:
        assert http.delete(f"/v1/keys/{full_id}").status_code == 403
        assert http.delete(f"/v1/keys/{capped_id}").status_code == 204  # its own reach: fine
    with ready.http(full) as http:
        assert http.get("/v1/me").json()["role"] == "operator"


@pytest.mark.parametrize("by", ["self", "admin"])
def test_password_change_ends_earlier_sessions(ready: Deployment, by: str) -> None:
    old = secrets.token_urlsafe(16)
    with ready.http() as admin:
        name = _user(admin, "operator", old)
    with httpx.Client(base_url=ready.gateway_url, timeout=30) as anon:
        tokens = anon.post("/v1/auth/login", json={"username": name, "password": old}).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert anon.get("/v1/me", headers=bearer).status_code == 200
        new = secrets.token_urlsafe(16)
        if by == "self":
            r = anon.put("/v1/me/password", headers=bearer,
                         json={"new_password": new, "current_password": old})
        else:
            with ready.http() as admin:
                r = admin.put(f"/v1/users/{name}/password", json={"new_password": new})
        assert r.status_code == 204, r.text

        def refused() -> bool:  # every replica's view follows the store
            return anon.get("/v1/me", headers=bearer).status_code == 401

        eventually_sync(refused, timeout_s=10, what="the old access token refused")
        again = anon.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401, again.text
        fresh = anon.post("/v1/auth/login", json={"username": name, "password": new})
        assert fresh.status_code == 200


def test_operator_cannot_promote_through_a_forged_pipeline_context(ready: Deployment) -> None:
    """A ``noop`` node returns what it is given: as a parent of a ``promote_if_better`` step it
    forges the context; the step's registry calls carry the submitter's (operator) role."""
    model = f"sec-{uuid.uuid4().hex[:8]}"
    with ready.http() as admin:
        op_key, _ = _key(admin, _user(admin, "operator"))
    with ready.http(op_key) as op:
        begin = op.post(f"/v1/models/{model}/uploads", json={"spec": {"format": "binary"}})
        assert begin.status_code in (200, 201), begin.text
        upload = begin.json()["upload_id"]
        done = op.put(f"/v1/models/{model}/uploads/{upload}", content=b"weights")
        assert done.status_code in (200, 201), done.text
        forged = {"context": {"model": {"name": model, "version": 1, "ref": f"{model}@1",
                                        "metrics": {"sharpe": 99.0}}}}
        wf = op.post("/v1/workflows", json={"tasks": [
            {"name": "forge", "type": "noop", "input": {"value": forged}},
            {"name": "promote", "type": "pipeline_step", "depends_on": ["forge"],
             "max_attempts": 1,
             "input": {"pipeline": "p", "run": "r", "step": "promote",
                       "kind": "promote_if_better", "params": {"model_name": model}}}]})
        assert wf.status_code in (200, 201, 202), wf.text
        wf_id = wf.json()["workflow"]["id"]

        def finished() -> dict[str, Any] | None:
            record = op.get(f"/v1/workflows/{wf_id}").json()
            return record if record["status"] != "running" else None

        record = eventually_sync(finished, timeout_s=60, interval_s=0.2,
                                 what="the workflow finished")
        production = op.get(f"/v1/models/{model}/versions/production")
        assert production.status_code == 404, production.text
        assert record["status"] == "failed", record


@pytest.mark.parametrize(("role", "moved"), [("operator", False), ("admin", True)])
def test_a_task_promotes_with_its_submitters_role(ready: Deployment, role: str,
                                                  moved: bool) -> None:
    """``sweep`` with ``promote: true`` and the ``promote_if_better`` step move production
    from inside a task: an operator's task must not, an admin's may."""
    model = f"sec-{uuid.uuid4().hex[:8]}"
    with ready.http() as admin:
        key, _ = _key(admin, _user(admin, role))
    with ready.http(key) as http:
        begin = http.post(f"/v1/models/{model}/uploads", json={"spec": {"format": "binary"}})
        done = http.put(f"/v1/models/{model}/uploads/{begin.json()['upload_id']}",
                        content=b"weights")
        assert done.status_code in (200, 201), done.text
        task = http.post("/v1/tasks", json={"type": "promote_as_submitter",
                                            "input": {"model": model, "version": 1}})
        assert task.status_code == 202, task.text
        task_id = task.json()["task_id"]

        def finished() -> dict[str, Any] | None:
            record = http.get(f"/v1/tasks/{task_id}").json()
            return record if record["status"] not in ("queued", "running") else None

        record = eventually_sync(finished, timeout_s=60, interval_s=0.2,
                                 what="the task finished")
        production = http.get(f"/v1/models/{model}/versions/production")
        assert (production.status_code == 200) is moved, (production.text, record)
        assert record["status"] == ("succeeded" if moved else "failed"), record
        if not moved:
            assert "forbidden" in str(record["error"]).lower() or \
                "may not" in str(record["error"]), record


def test_snapshot_routes_work_under_the_generated_permissions(ready: Deployment) -> None:
    ns = f"sec{uuid.uuid4().hex[:8]}"
    before = len(ready.violations())  # other tests' attacks cause theirs on purpose
    with ready.http() as admin:
        assert admin.put(f"/v1/state/{ns}/k", json={"value": {"n": 1}}).status_code == 200
        created = admin.post("/v1/state/_snapshots", json={"namespace": ns}, timeout=120)
        assert created.status_code == 201, created.text
        name = created.json()["name"]
        down = admin.get(f"/v1/state/_snapshots/{name}")
        assert down.status_code == 200, down.text
        copy = f"copy-{name}"
        up = admin.put(f"/v1/state/_snapshots/{copy}", content=down.content)
        assert up.status_code == 201, up.text
        assert admin.put(f"/v1/state/{ns}/k", json={"value": {"n": 2}}).status_code == 200
        restored = admin.post(f"/v1/state/_snapshots/{copy}/restore", json={"namespace": ns})
        assert restored.status_code == 200, restored.text
        assert admin.get(f"/v1/state/{ns}/k").json()["value"] == {"n": 1}
    assert not [v for v in ready.violations()[before:] if "snapshots" in v]
