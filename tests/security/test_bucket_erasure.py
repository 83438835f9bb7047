"""Data that must not be erased through the stream API, attacked with the credentials that may
publish into it: the gateway's on its auth bucket (users, API key hashes, sessions), the
executor's on task records, workflows and the facts. A ``Nats-Rollup: all`` message would
replace a whole bucket with itself, a purge request would empty it; the server must refuse
both, and every message must still be there."""

from __future__ import annotations

import uuid

import httpx
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import Error as JsError

from tests.deployment import Deployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REFUSED = (NatsTimeout, NoRespondersError, JsError, TimeoutError)

#: (credentials, stream, a subject the credentials may publish into that stream)
TARGETS = [
    ("gateway", "KV_quantops_auth", "$KV.quantops_auth.attack"),
    ("executor", "KV_quantops_task_status", "$KV.quantops_task_status.attack"),
    ("executor", "KV_quantops_workflows", "$KV.quantops_workflows.attack"),
    ("registry", "QUANTOPS_EVENTS", "events.attack"),
    ("gateway", "OBJ_quantops_state_snapshots", "$O.quantops_state_snapshots.C.attack"),
    ("gateway", "QUANTOPS_STAGING", "staging.attack"),
]


@pytest.mark.parametrize(("user", "stream", "subject"), TARGETS)
async def test_owner_credentials_cannot_erase(ready: Deployment, user: str, stream: str,
                                              subject: str) -> None:
    nc = await ready.connect(user)
    try:
        js = nc.jetstream(timeout=3)
        with ready.http() as http:  # a workflow, task records, facts, a snapshot: to lose
            r = http.post("/v1/workflows", json={"tasks": [
                {"name": "a", "type": "noop", "input": {}}]})
            assert r.status_code < 300, r.text
            ns = f"sec{uuid.uuid4().hex[:8]}"
            assert http.put(f"/v1/state/{ns}/k", json={"value": 1}).status_code < 300
            r = http.post("/v1/state/_snapshots", json={"namespace": ns})
            assert r.status_code < 300, r.text
        if stream == "QUANTOPS_STAGING":  # an upload in progress
            await js.publish("staging.0123456789abcdef0123456789abcdef", b"chunk")
        before = (await js.stream_info(stream)).state.messages
        assert before > 0, f"{stream} is empty: nothing to attack"
        try:
            ack = await js.publish(subject, b"", headers={"Nats-Rollup": "all"})
            print(f"rollup accepted on {stream}: {ack}")
        except REFUSED as e:
            print(f"rollup refused on {stream}: {e!r}")
        try:
            await js.purge_stream(stream)
            print(f"purge accepted on {stream}")
        except REFUSED as e:
            print(f"purge refused on {stream}: {e!r}")
        after = (await js.stream_info(stream)).state.messages
        print(f"{stream}: {before} messages before, {after} after")
        assert after >= before, f"{user}'s credentials erased {before - after} messages"
    finally:
        await nc.close()


def test_a_revoked_session_stays_revoked_without_purges(ready: Deployment) -> None:
    """Logout removes the session's refresh tokens with expiring delete markers (no purge):
    the refresh token must be refused afterwards."""
    name, password = f"u{uuid.uuid4().hex[:10]}", "a-long-password-1"
    with ready.http() as admin:
        assert admin.post("/v1/users", json={"name": name, "role": "viewer",
                                             "password": password}).status_code == 201
    with httpx.Client(base_url=ready.gateway_url, timeout=30) as http:
        login = http.post("/v1/auth/login", json={"username": name, "password": password})
        assert login.status_code == 200, login.text
        tokens = login.json()
        out = http.post("/v1/auth/logout",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert out.status_code < 300, out.text
        again = http.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401, again.text
