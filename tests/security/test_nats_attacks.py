"""Issue 13's NATS attacks, each against the real deployment (``conftest``): a caller that holds
NATS credentials but no bus token, or a service's credentials used for what that service never
does. Every test first sets up what a legitimate caller would (with a signed bus token), then
attacks, then checks both the refusal and that nothing changed."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.errors import Error as JsError
from nats.js.errors import NotFoundError

from shared.clients.registry_objects import meta_subject
from shared.subjects import STATUS_ERROR, Header
from tests.deployment import Deployment
from tests.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: What a forger writes: someone else's name and the top role, in plain headers.
FORGED = {Header.PRINCIPAL.value: "alice", Header.ROLE.value: "admin"}


async def call(nc: NATS, subject: str, body: dict[str, Any], headers: dict[str, str]) -> Msg:
    return await nc.request(subject, msgspec.json.encode(body), timeout=10, headers=headers)


def error_code(reply: Msg) -> str:
    if (reply.headers or {}).get(Header.STATUS.value) != STATUS_ERROR:
        return ""
    return str(msgspec.json.decode(reply.data)["error"]["code"])


async def register(nc: NATS, deployment: Deployment, model: str, data: bytes) -> None:
    reply = await call(nc, "registry.versions.register", {
        "model": model, "artifact": __import__("base64").b64encode(data).decode(),
        "spec": {"format": "binary", "metrics": {"sharpe": 1.0}}},
        deployment.signed("ops", "operator"))
    assert error_code(reply) == "", reply.data


async def test_forged_principal_cannot_promote_or_write_audit(
        ready: Deployment, client_nc: NATS) -> None:
    model = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, model, b"weights")
    reply = await call(client_nc, "registry.aliases.promote",
                       {"model": model, "version": 1, "reason": "forged"}, FORGED)
    assert error_code(reply) == "unauthenticated", reply.data
    with ready.http() as http:
        audit = http.get(f"/v1/models/{model}/audit").json()["items"]
        assert not [e for e in audit if e.get("principal") == "alice"], audit
        assert http.get(f"/v1/models/{model}/versions/production").status_code == 404


async def test_operator_token_cannot_promote(ready: Deployment, client_nc: NATS) -> None:
    """A real token, but of a role below the operation's (promote is admin)."""
    model = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, model, b"weights")
    reply = await call(client_nc, "registry.aliases.promote", {"model": model, "version": 1},
                       ready.signed("ops", "operator"))
    assert error_code(reply) == "forbidden", reply.data
    reply = await call(client_nc, "registry.aliases.set",
                       {"model": model, "alias": "production", "version": 1},
                       ready.signed("ops", "operator"))
    assert error_code(reply) == "forbidden", reply.data


async def test_forged_principal_cannot_purge_tasks(ready: Deployment, client_nc: NATS) -> None:
    reply = await call(client_nc, "executor.tasks.purge", {"older_than_s": 0}, FORGED)
    assert error_code(reply) == "unauthenticated", reply.data


async def test_forged_principal_cannot_restore_a_snapshot(
        ready: Deployment, client_nc: NATS) -> None:
    ns = f"sec{uuid.uuid4().hex[:8]}"
    operator, admin = ready.signed("ops", "operator"), ready.signed("root", "admin")
    put = {"namespace": ns, "key": "k", "value": {"v": "before"}}
    assert error_code(await call(client_nc, "state.kv.put", put, operator)) == ""
    snap = await call(client_nc, "state.snapshot.create", {"namespace": ns}, admin)
    assert error_code(snap) == "", snap.data
    name = msgspec.json.decode(snap.data)["name"]
    put["value"] = {"v": "after"}
    assert error_code(await call(client_nc, "state.kv.put", put, operator)) == ""
    reply = await call(client_nc, "state.snapshot.restore", {"name": name}, FORGED)
    assert error_code(reply) == "unauthenticated", reply.data
    got = await call(client_nc, "state.kv.get", {"namespace": ns, "key": "k"}, operator)
    assert msgspec.json.decode(got.data)["value"] == {"v": "after"}


async def test_client_cannot_fake_state_changes(ready: Deployment, client_nc: NATS) -> None:
    """A watcher (the gateway's SSE) must see only what the state service committed."""
    ns = f"sec{uuid.uuid4().hex[:8]}"
    watcher = await ready.connect("gateway")
    try:
        sub = await watcher.subscribe(f"state.changes.{ns}.>")
        await watcher.flush()
        await client_nc.publish(f"state.changes.{ns}.k", b'{"v": "fake"}',
                                headers={"Nats-Sequence": "999"})
        await client_nc.flush()
        put = {"namespace": ns, "key": "k", "value": {"v": "real"}}
        assert error_code(await call(client_nc, "state.kv.put", put,
                                     ready.signed("ops", "operator"))) == ""
        first = await sub.next_msg(timeout=10)
        assert msgspec.json.decode(first.data) == {"v": "real"}, first.data
    finally:
        await watcher.close()


async def test_client_cannot_roll_up_an_object_store(ready: Deployment, client_nc: NATS) -> None:
    """``Nats-Rollup: all`` on any subject of a bucket would erase every object in it."""
    model = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, model, b"precious weights")
    js = client_nc.jetstream(timeout=3)
    with pytest.raises((NatsTimeout, NoRespondersError, JsError, TimeoutError)):
        await js.publish("$O.quantops_artifacts.C.evil", b"x", headers={"Nats-Rollup": "all"})
    with ready.http() as http:
        r = http.get(f"/v1/models/{model}/versions/1/artifact")
        assert r.status_code == 200 and r.content == b"precious weights", r.text


async def test_gateway_credentials_cannot_purge_artifacts(ready: Deployment,
                                                          client_nc: NATS) -> None:
    model = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, model, b"keep me")
    gateway = await ready.connect("gateway")
    try:
        js = gateway.jetstream(timeout=3)
        for stream in ("OBJ_quantops_artifacts", "OBJ_quantops_datasets"):
            with pytest.raises((NatsTimeout, NoRespondersError, JsError, TimeoutError)):
                await js.purge_stream(stream)
    finally:
        await gateway.close()
    with ready.http() as http:
        assert http.get(f"/v1/models/{model}/versions/1/artifact").content == b"keep me"


@pytest.mark.parametrize("source", ["QUANTOPS_EVENTS", "QUANTOPS_STAGING",
                                    "OBJ_quantops_artifacts"])
@pytest.mark.parametrize("target", ["tasks.queue.high.{id}", "$KV.quantops_auth.users.{id}",
                                    "$KV.quantops_state.{id}.k"])
async def test_push_consumer_cannot_deliver_where_its_creator_may_not_publish(
        ready: Deployment, client_nc: NATS, target: str, source: str) -> None:
    """A push consumer's deliveries are published by the server: aimed at the work queue, the
    auth bucket or the state bucket, they would be writes the gateway has no grant for (or,
    into its own auth bucket, writes that bypass its checks). The gateway reads the object
    stores and appends to the staging stream, whose messages it can choose."""
    await register(client_nc, ready, f"sec-{uuid.uuid4().hex[:8]}", b"an event to deliver")
    deliver = target.format(id=uuid.uuid4().hex[:8])
    gateway = await ready.connect("gateway")
    executor = await ready.connect("executor")
    try:
        js = gateway.jetstream(timeout=3)
        if source == "QUANTOPS_STAGING":
            await js.publish(f"staging.{uuid.uuid4().hex}", b'{"forged": true}')
        try:
            consumer = await js.add_consumer(source, api.ConsumerConfig(
                deliver_subject=deliver, deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.NONE))
        except (NatsTimeout, NoRespondersError, JsError, TimeoutError) as e:
            print(f"consumer refused: {e!r}")
            return  # refused outright: closed
        last = (await js.stream_info(source)).state.last_seq
        delivered = None

        async def pushed_all() -> bool:
            nonlocal delivered
            try:
                delivered = (await js.consumer_info(source, consumer.name)).delivered
            except NotFoundError:  # an ephemeral push consumer nobody listens to expires
                return True
            return delivered is not None and (delivered.stream_seq or 0) >= last

        # Until the consumer has pushed everything it had, for 5 s at most: one that pushes
        # nothing is what this test hopes for, and the check below is the verdict either way.
        with contextlib.suppress(TimeoutError):
            await eventually(pushed_all, timeout_s=5, interval_s=0.05,
                             what="the consumer's deliveries done")
        print(f"consumer {consumer.name} delivered up to {delivered}")
        landed = await _landed(ready, deliver)
        assert landed is None, f"the server delivered into {deliver}: {landed.data[:80]!r}"
    finally:
        await gateway.close()
        await executor.close()


async def _landed(ready: Deployment, subject: str) -> Any:
    """The message on ``subject`` in the stream that captures it, read as that stream's owner."""
    owner, stream = {"tasks": ("executor", "QUANTOPS_TASKS"),
                     "$KV.quantops_auth": ("gateway", "KV_quantops_auth"),
                     "$KV.quantops_state": ("state", "KV_quantops_state")}[
        next(p for p in ("tasks", "$KV.quantops_auth", "$KV.quantops_state")
             if subject.startswith(p))]
    nc = await ready.connect(owner)
    try:
        return await nc.jetstream(timeout=3).get_last_msg(stream, subject)
    except NotFoundError:
        return None
    finally:
        await nc.close()


async def test_client_acts_over_nats_with_a_token_from_the_gateway(
        ready: Deployment, client_nc: NATS) -> None:
    """The ``client`` NATS user's way in: a bus token for its API key, with the key's role."""
    with ready.http() as admin:
        name = f"u{uuid.uuid4().hex[:10]}"
        assert admin.post("/v1/users", json={"name": name, "role": "operator"}).status_code == 201
        key = admin.post("/v1/keys", json={"user": name, "role": "viewer"}).json()["key"]
    with ready.http(key) as http:
        grant = http.post("/v1/auth/bus-token").json()
    assert grant["principal"] == name and grant["role"] == "viewer"
    headers = {grant["header"]: grant["token"]}
    ns = f"sec{uuid.uuid4().hex[:8]}"
    read = await call(client_nc, "state.kv.list", {"namespace": ns}, headers)
    assert error_code(read) == "", read.data
    write = await call(client_nc, "state.kv.put", {"namespace": ns, "key": "k", "value": 1},
                       headers)
    assert error_code(write) == "forbidden", write.data


async def test_upload_meta_naming_another_objects_chunks_cannot_erase_them(
        ready: Deployment, client_nc: NATS) -> None:
    """An uploader writes its object's meta itself; one naming the victim's chunks (``nuid``)
    must not make the abort of its upload purge them."""
    victim = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, victim, b"victim weights")
    operator = ready.signed("ops", "operator")
    gateway = await ready.connect("gateway")  # an uploader's credentials
    try:
        js = gateway.jetstream(timeout=5)
        with ready.http() as http:
            object_name = http.get(f"/v1/models/{victim}/versions/1").json()[
                "artifact"]["object_name"]
        victim_meta = await js.get_last_msg("OBJ_quantops_artifacts",
                                            meta_subject("quantops_artifacts", object_name))
        nuid = msgspec.json.decode(victim_meta.data)["nuid"]
        begin = await call(client_nc, "registry.uploads.begin",
                           {"model": f"sec-{uuid.uuid4().hex[:8]}",
                            "spec": {"format": "binary"}}, operator)
        ticket = msgspec.json.decode(begin.data)
        forged = {**msgspec.json.decode(victim_meta.data), "name": ticket["object_name"],
                  "nuid": nuid}
        try:  # uploaders stage chunks now: the object store takes only the registry's
            await js.publish(meta_subject("quantops_artifacts", ticket["object_name"]),
                             msgspec.json.encode(forged), headers={"Nats-Rollup": "sub"})
        except (NatsTimeout, NoRespondersError, JsError, TimeoutError) as e:
            print(f"forged meta refused: {e!r}")
        abort = await call(client_nc, "registry.uploads.abort",
                           {"upload_id": ticket["upload_id"]}, operator)
        assert error_code(abort) == "", abort.data
    finally:
        await gateway.close()
    with ready.http() as http:
        r = http.get(f"/v1/models/{victim}/versions/1/artifact")
        assert r.status_code == 200 and r.content == b"victim weights", r.text


@pytest.mark.parametrize(("user", "bucket"), [
    ("gateway", "quantops_artifacts"), ("executor", "quantops_artifacts"),
    ("gateway", "quantops_datasets")])
async def test_uploader_credentials_cannot_roll_up_an_object_store(
        ready: Deployment, client_nc: NATS, user: str, bucket: str) -> None:
    """The gateway and the executor upload (artifacts, datasets): whatever they may publish,
    one ``Nats-Rollup: all`` message must not replace a whole object store."""
    model = f"sec-{uuid.uuid4().hex[:8]}"
    await register(client_nc, ready, model, b"precious weights")
    with ready.http() as http:
        demo = http.post("/v1/datasets/_demo")
        assert demo.status_code < 300, demo.text
    nc = await ready.connect(user)
    try:
        js = nc.jetstream(timeout=3)
        stream = f"OBJ_{bucket}"
        before = (await js.stream_info(stream)).state.messages
        try:
            ack = await js.publish(f"$O.{bucket}.C.evil", b"x", headers={"Nats-Rollup": "all"})
            print(f"{user}: rollup accepted on {stream}: {ack}")
        except (NatsTimeout, NoRespondersError, JsError, TimeoutError) as e:
            print(f"{user}: rollup refused on {stream}: {e!r}")
        after = (await js.stream_info(stream)).state.messages
        print(f"{stream}: {before} messages before, {after} after")
    finally:
        await nc.close()
    assert after >= before, f"{user}'s credentials erased {before - after} messages of {bucket}"
    with ready.http() as http:
        r = http.get(f"/v1/models/{model}/versions/1/artifact")
        assert r.status_code == 200 and r.content == b"precious weights", r.text
