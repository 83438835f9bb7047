"""The NATS permission model, enforced by a real nats-server running the block that
``shared.natsauth`` writes for ``quantops up``: no credentials, no connection; the gateway
cannot reach internal subjects, queues, buckets or forge events, nor read or write another
user's inbox; each service can do its job, JetStream included, through exactly the API subjects
it was granted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import api
from nats.js.errors import KeyNotFoundError

from shared import natsauth
from shared.bus import connect_nats, flush
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from shared.clients.staging import stage_object
from shared.streams import staging_config
from shared.subjects import Bucket, Stream, staging_subject
from tests.deploy.natsutil import connect_as, receive_after, request_served
from tests.support import eventually, start_nats

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> natsauth.EmbeddedAuth:
    return natsauth.embedded_auth(tmp_path_factory.mktemp("auth"))


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, auth: natsauth.EmbeddedAuth
) -> Iterator[EmbeddedNats]:
    # A private server: the resources below use the project's real stream and bucket names,
    # because permissions are granted per name.
    server = start_nats(tmp_path_factory.mktemp("nats-auth"), extra_config=auth.server_config())
    yield server
    server.stop()


class Conn:
    """A connection as one user, collecting the asynchronous errors the server sends."""

    def __init__(self, nc: NATS, errors: list[Exception]) -> None:
        self.nc = nc
        self.errors = errors
        self.js = nc.jetstream(timeout=2)

    async def violation(self, timeout_s: float = 2.0) -> str:
        """Wait for the server's permissions-violation error; return its text, lower-cased
        (nats-py lower-cases the server's message, subject included)."""
        def found() -> str | None:
            texts = (str(e).lower() for e in self.errors)
            return next((t for t in texts if "permissions violation" in t), None)

        try:
            return await eventually(found, timeout_s=timeout_s, what="a permissions violation")
        except TimeoutError:
            raise AssertionError(f"no permissions violation; errors: {self.errors}") from None


@pytest.fixture
async def connect(
    secured: EmbeddedNats, auth: natsauth.EmbeddedAuth
) -> AsyncIterator[object]:
    opened: list[NATS] = []

    async def make(user: str) -> Conn:
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        cred = auth.credentials[user]
        nc = await connect_as(secured.url, user, cred.password.reveal(), error_cb=on_error,
                              allow_reconnect=False, connect_timeout=2)
        opened.append(nc)
        return Conn(nc, errors)

    yield make
    for nc in opened:
        await nc.close()


async def test_no_credentials_cannot_connect(secured: EmbeddedNats) -> None:
    with pytest.raises(Exception) as info:
        await nats.connect(secured.url, allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=2)
    assert "authorization" in repr(info.value).lower()


async def test_wrong_password_cannot_connect(secured: EmbeddedNats) -> None:
    with pytest.raises(Exception) as info:
        await nats.connect(secured.url, user="gateway", password="guess",
                           allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    assert "authorization" in repr(info.value).lower()


@pytest.mark.parametrize("subject", [
    "registry.internal.orphans.sweep",  # service-to-service only
    "tasks.queue.high",  # straight into the work queue, skipping the executor's checks
    "events.model.promoted",  # a forged fact
    "$KV.quantops_state.positions.AAPL",  # a state write around the state service
    "$JS.API.STREAM.DELETE.QUANTOPS_TASKS",
    "$JS.API.STREAM.PURGE.KV_quantops_task_status",
])
async def test_gateway_cannot_publish_outside_its_grants(connect, subject: str) -> None:
    gateway = await connect("gateway")
    await gateway.nc.publish(subject, b"{}")
    await flush(gateway.nc)
    text = await gateway.violation()
    assert f'publish to "{subject.lower()}"' in text


async def test_internal_subject_never_reaches_the_service(connect, unique: str) -> None:
    registry = await connect("registry")
    gateway = await connect("gateway")
    executor = await connect("executor")
    sub = await registry.nc.subscribe("registry.internal.>")
    await flush(registry.nc)
    await gateway.nc.publish(f"registry.internal.{unique}", b"from-gateway")
    await flush(gateway.nc)
    await gateway.violation()
    # A backend the registry serves may use it: the same subject from the executor arrives.
    msg = await receive_after(
        sub, lambda: executor.nc.publish(f"registry.internal.{unique}", b"from-executor"))
    assert msg.data == b"from-executor"


async def test_gateway_calls_public_subjects_and_health(connect) -> None:
    registry = await connect("registry")
    gateway = await connect("gateway")

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"ok": true}')

    await registry.nc.subscribe("registry.versions.register", queue="registry", cb=answer)
    await registry.nc.subscribe("registry.health", cb=answer)
    await flush(registry.nc)
    for subject in ("registry.versions.register", "registry.health"):
        reply = await request_served(gateway.nc, subject, b"{}")
        assert reply.data == b'{"ok": true}'
    assert gateway.errors == []


@pytest.mark.parametrize("inbox", [
    "_INBOX_executor.>",  # the executor's replies and JetStream deliveries
    "_INBOX_state.abc.*",
    "_INBOX.>",  # nats-py's default prefix: no one's, and no one may read it
    ">",
])
async def test_gateway_cannot_read_other_inboxes(connect, inbox: str) -> None:
    gateway = await connect("gateway")
    await gateway.nc.subscribe(inbox)
    await flush(gateway.nc)
    assert f'subscription to "{inbox.lower()}"' in await gateway.violation()


async def test_replies_to_another_user_stay_out_of_reach(connect, unique: str) -> None:
    """The executor asks the registry; the gateway, listening where it may, sees nothing."""
    registry = await connect("registry")
    executor = await connect("executor")
    gateway = await connect("gateway")

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"secret")

    await registry.nc.subscribe(f"registry.internal.{unique}", queue="registry", cb=answer)
    await flush(registry.nc)
    own = await gateway.nc.subscribe(f"{natsauth.inbox_prefix('gateway')}.>")
    await flush(gateway.nc)
    reply = await request_served(executor.nc, f"registry.internal.{unique}", b"{}")
    assert reply.data == b"secret"
    assert reply.subject.startswith(f"{natsauth.inbox_prefix('executor')}.")
    with pytest.raises(TimeoutError):
        await own.next_msg(timeout=0.3)
    assert registry.errors == [] and executor.errors == [] and gateway.errors == []


async def test_cli_publishes_into_no_inbox(connect) -> None:
    # It serves nothing, so it has no reply to send: a message into an inbox is a forgery.
    cli = await connect(natsauth.CLI_USER)
    await cli.nc.publish(f"{natsauth.inbox_prefix('gateway')}.x.y", b"forged")
    await flush(cli.nc)
    assert 'publish to "_inbox_gateway.x.y"' in await cli.violation()


async def test_cli_user_serves_nothing(connect, unique: str) -> None:
    # It may not subscribe to a service subject, so it never receives a request.
    cli = await connect(natsauth.CLI_USER)
    await cli.nc.subscribe(f"state.{unique}")
    await flush(cli.nc)
    assert f'subscription to "state.{unique}"' in await cli.violation()


async def test_services_connect_with_their_own_inbox(
    secured: EmbeddedNats, auth: natsauth.EmbeddedAuth, connect, tmp_path: Path
) -> None:
    """``connect_nats``, as every service connects: its own prefix, and requests work."""
    registry = await connect("registry")

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"pong")

    await registry.nc.subscribe("registry.health", cb=answer)
    await flush(registry.nc)
    settings = Settings.from_env({
        "QUANTOPS_DATA_DIR": str(tmp_path), "QUANTOPS_NATS_URL": secured.url,
        **auth.env("gateway")})
    nc = await connect_nats(settings, name="test-gateway", connect_timeout_s=5)
    try:
        assert nc.new_inbox().startswith("_INBOX_gateway.")
        assert (await request_served(nc, "registry.health", b"{}")).data == b"pong"
    finally:
        await nc.close()


async def test_no_one_else_can_serve_a_service_subject(connect) -> None:
    gateway = await connect("gateway")
    # Subscribing would let it answer (impersonate) the registry.
    await gateway.nc.subscribe("registry.versions.get", queue="registry")
    await flush(gateway.nc)
    text = await gateway.violation()
    assert 'subscription to "registry.versions.get"' in text


async def test_cli_user_asks_health_only(connect) -> None:
    cli = await connect(natsauth.CLI_USER)
    await cli.nc.publish("state.kv.put", b"{}")
    await flush(cli.nc)
    assert 'publish to "state.kv.put"' in await cli.violation()


async def _state_bucket(state: Conn) -> object:
    # As the state service makes it: every committed change republished on its feed.
    return await state.js.create_key_value(api.KeyValueConfig(
        bucket=str(Bucket.STATE), history=8,
        republish=api.RePublish(src=f"$KV.{Bucket.STATE}.>", dest="state.changes.>")))


async def test_state_user_owns_its_kv_bucket(connect, unique: str) -> None:
    state = await connect("state")
    kv = await _state_bucket(state)
    rev = await kv.put(f"ns.{unique}", b"1")
    assert (await kv.get(f"ns.{unique}")).value == b"1"
    assert await kv.update(f"ns.{unique}", b"2", last=rev) > rev
    assert [e.value for e in await kv.history(f"ns.{unique}")] == [b"1", b"2"]
    watcher = await kv.watch(f"ns.{unique}")
    first = await watcher.updates(timeout=2)
    assert first is not None and first.value == b"2"
    await watcher.stop()
    assert f"ns.{unique}" in await kv.keys()
    await kv.delete(f"ns.{unique}")
    with pytest.raises(KeyNotFoundError):
        await kv.get(f"ns.{unique}")
    assert state.errors == []


async def test_callers_follow_the_state_change_feed(connect, unique: str) -> None:
    state = await connect("state")
    kv = await _state_bucket(state)
    gateway = await connect("gateway")
    feed = await gateway.nc.subscribe(f"state.changes.{unique}.>")
    await flush(gateway.nc)
    msg = await receive_after(feed, lambda: kv.put(f"{unique}.k", b"v1"))
    assert (msg.subject, msg.data) == (f"state.changes.{unique}.k", b"v1")
    assert gateway.errors == []


async def test_other_users_cannot_read_the_state_bucket(connect) -> None:
    state = await connect("state")
    await _state_bucket(state)
    executor = await connect("executor")
    with pytest.raises(Exception):  # noqa: B017 - the request is dropped: a timeout
        # A denied request is dropped, so it can only time out: keep the wait short.
        await executor.nc.jetstream(timeout=0.5).key_value(str(Bucket.STATE))
    assert "$js.api.stream.info.kv_quantops_state" in await executor.violation()


async def test_executor_runs_the_work_queue(connect, unique: str) -> None:
    executor = await connect("executor")
    js = executor.js
    await js.add_stream(name=str(Stream.TASKS), subjects=["tasks.queue.>"],
                        retention=api.RetentionPolicy.WORK_QUEUE, duplicate_window=120)
    ack = await js.publish("tasks.queue.high", b"task", headers={"Nats-Msg-Id": unique})
    again = await js.publish("tasks.queue.high", b"task", headers={"Nats-Msg-Id": unique})
    assert again.seq == ack.seq and again.duplicate
    psub = await js.pull_subscribe("tasks.queue.high", durable=f"w{unique}",
                                   stream=str(Stream.TASKS))
    [msg] = await psub.fetch(1, timeout=2)
    await msg.in_progress()
    await msg.nak(delay=0.1)
    [msg] = await psub.fetch(1, timeout=3)
    assert msg.metadata.num_delivered == 2
    await msg.ack_sync(timeout=2)
    info = await js.consumer_info(str(Stream.TASKS), f"w{unique}")
    assert info.num_ack_pending == 0
    status = await js.create_key_value(bucket=str(Bucket.TASK_STATUS))
    await status.put(unique, b"succeeded")
    assert executor.errors == []


async def test_events_written_by_backends_followed_by_the_gateway(connect, unique: str) -> None:
    """The gateway follows facts by core subscription; it has no JetStream grant on the events
    stream, so it cannot create a consumer whose deliveries it could aim elsewhere."""
    registry = await connect("registry")
    await registry.js.add_stream(name=str(Stream.EVENTS), subjects=["events.>"])
    gateway = await connect("gateway")
    sub = await gateway.nc.subscribe(f"events.model.{unique}")
    await flush(gateway.nc)
    msg = await receive_after(
        sub, lambda: registry.js.publish(f"events.model.{unique}", b"promoted"))
    assert msg.data == b"promoted"
    assert gateway.errors == []
    with pytest.raises((nats.errors.TimeoutError, TimeoutError)):
        await gateway.js.pull_subscribe(f"events.model.{unique}", durable=f"g{unique}",
                                        stream=str(Stream.EVENTS))
    await gateway.violation()


async def test_registry_object_store_and_uploaders(connect, tmp_path: Path) -> None:
    """The registry writes the object store; an uploader stages chunks, may read objects,
    and cannot publish into the store (where one rollup header would erase it)."""
    registry = await connect("registry")
    store = await registry.js.create_object_store(bucket=str(Bucket.ARTIFACTS))
    await registry.js.add_stream(staging_config(Settings.from_env({})))
    blob = bytes(range(256)) * 4096  # 1 MiB: several chunks, so a consumer is involved
    await store.put("model-a", blob)
    assert (await store.get("model-a")).data == blob
    executor = await connect("executor")
    theirs = await executor.js.object_store(str(Bucket.ARTIFACTS))
    assert (await theirs.get("model-a")).data == blob
    staged = await stage_object(executor.js, executor.nc, staging_subject("0" * 32), b"weights",
                                chunk_bytes=1024, max_bytes=1024)
    assert staged.size_bytes == 7
    with pytest.raises(Exception):  # noqa: B017 - dropped by the server: a timeout
        await executor.nc.jetstream(timeout=0.5).publish(
            f"$O.{Bucket.ARTIFACTS}.C.x", b"x", headers={"Nats-Rollup": "all"})
    assert f"$o.{Bucket.ARTIFACTS}.c.x" in await executor.violation()
    await registry.js.purge_stream(Stream.STAGING, subject=staging_subject("0" * 32))
    await store.delete("model-a")
    assert registry.errors == []


async def test_uploader_cannot_create_or_delete_the_store(connect) -> None:
    executor = await connect("executor")
    with pytest.raises(Exception):  # noqa: B017 - dropped by the server: a timeout
        await executor.nc.jetstream(timeout=0.5).delete_stream(f"OBJ_{Bucket.ARTIFACTS}")
    assert "$js.api.stream.delete.obj_quantops_artifacts" in await executor.violation()
