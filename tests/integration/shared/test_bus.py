"""The bus against a real nats-server: replies, error mapping, bad input, trace and correlation
propagation, and a subscription that keeps serving across a nats-server restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from opentelemetry import trace

from shared import bustokens, errors
from shared.bus import Bus, Context, connect_nats, flush
from shared.contracts.base import Message
from shared.natsserver import EmbeddedNats
from shared.operations import Operation
from shared.roles import Role
from shared.settings import Settings
from shared.subjects import STATUS_ERROR, Header
from tests.support import eventually


class Add(Message):
    a: int
    b: int


class Sum(Message):
    total: int
    correlation_id: str = ""
    traceparent: str = ""


async def add(req: Add, ctx: Context) -> Sum:
    if req.a < 0:
        raise errors.InvalidRequest("a must not be negative", details={"a": req.a})
    if req.a == 13:
        raise RuntimeError("unlucky")  # a bug in a handler
    return Sum(total=req.a + req.b, correlation_id=ctx.correlation_id,
               traceparent=ctx.headers.get("traceparent", ""))


def _op(subject: str) -> Operation:
    return Operation(subject, Add, Sum, Role.VIEWER, "add two numbers")


@pytest.fixture
async def served(bus: Bus, unique: str) -> str:
    subject = f"test.{unique}.add"
    await bus.serve(_op(subject), add)
    return subject


async def test_typed_round_trip(bus: Bus, served: str) -> None:
    assert (await bus.request(served, Add(a=2, b=3), Sum)).total == 5


async def test_domain_error_becomes_typed_exception(bus: Bus, served: str) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        await bus.request(served, Add(a=-1, b=0), Sum)
    assert info.value.details == {"a": -1}


async def test_success_replies_carry_no_headers_and_errors_name_their_correlation(
    bus: Bus, served: str
) -> None:
    """A success needs no headers (the requester knows its correlation id; nats-py's header
    work would be a fifth of the round trip); a failure is marked and names the request."""
    cid = {Header.CORRELATION_ID.value: "cid-hdr"}
    ok = await bus.nc.request(served, b'{"a": 1, "b": 2}', timeout=5, headers=cid)
    assert ok.headers is None and msgspec.json.decode(ok.data, type=Sum).total == 3
    failed = await bus.nc.request(served, b'{"a": -1, "b": 2}', timeout=5, headers=cid)
    assert failed.headers == {Header.STATUS.value: STATUS_ERROR, **cid}


@pytest.mark.parametrize("payload", [b"{not json", b'{"a": "x", "b": 1}', b"[]", b"",
                                     b'{"a": 1}', b"\xff\xfe"])
async def test_bad_payloads_get_structured_errors_and_serving_goes_on(
    bus: Bus, served: str, payload: bytes
) -> None:
    reply = await bus.nc.request(served, payload, timeout=5)
    assert reply.headers and reply.headers[Header.STATUS] == STATUS_ERROR
    body = msgspec.json.decode(reply.data, type=errors.ErrorReply).error
    assert body.code == "invalid_request"
    assert body.message
    assert (await bus.request(served, Add(a=1, b=1), Sum)).total == 2


async def test_handler_bug_is_an_internal_error_not_a_dead_subscription(
    bus: Bus, served: str
) -> None:
    with pytest.raises(errors.QuantopsError) as info:
        await bus.request(served, Add(a=13, b=0), Sum)
    assert info.value.code == "internal"
    assert "unlucky" not in info.value.message  # internals do not leak to callers
    assert (await bus.request(served, Add(a=4, b=4), Sum)).total == 8


async def test_nobody_listening_is_service_unavailable(bus: Bus, unique: str) -> None:
    with pytest.raises(errors.ServiceUnavailable):
        await bus.request(f"test.{unique}.nobody", Add(a=1, b=1), Sum, timeout_s=1)


async def test_slow_service_is_a_timeout(bus: Bus, unique: str) -> None:
    async def slow(req: Add, ctx: Context) -> Sum:
        await asyncio.sleep(2)  # not a synchronisation: a handler slow on purpose
        return Sum(total=0)

    await bus.serve(_op(f"test.{unique}.slow"), slow)
    with pytest.raises(errors.ServiceTimeout):
        await bus.request(f"test.{unique}.slow", Add(a=1, b=1), Sum, timeout_s=0.3)


async def test_correlation_id_and_trace_context_travel_in_headers(bus: Bus, served: str) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as span:
        reply = await bus.request(served, Add(a=1, b=2), Sum,
                                  headers={Header.CORRELATION_ID.value: "cid-42"})
    assert reply.correlation_id == "cid-42"
    assert span.get_span_context().is_valid
    trace_id = format(span.get_span_context().trace_id, "032x")
    # traceparent = version-traceid-parentid-flags: the server sees the caller's trace.
    assert reply.traceparent.split("-")[1] == trace_id


async def test_concurrent_requests_all_answered(bus: Bus, served: str) -> None:
    replies = await asyncio.gather(*(bus.request(served, Add(a=i, b=1), Sum)
                                     for i in range(200) if i != 13))
    assert sorted(r.total for r in replies) == sorted(i + 1 for i in range(200) if i != 13)


async def test_flush_means_another_connection_reaches_the_new_subscription(
    nats_factory: Callable[..., EmbeddedNats], unique: str
) -> None:
    # nats-py's own flush() can return before the server has a SUB it was just sent (its PING
    # overtakes the send buffer); on a fresh server that showed as "no responders" about one
    # request in ten. shared.bus.flush must make every one of these succeed.
    server = nats_factory()
    settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
    serving = await connect_nats(settings, name="serving")
    asking = await connect_nats(settings, name="asking")

    async def answer(msg: Any) -> None:
        await msg.respond(b"ok")

    try:
        for i in range(60):
            await serving.subscribe(f"test.{unique}.flush.{i}", cb=answer)
            await flush(serving)
            assert (await asking.request(f"test.{unique}.flush.{i}", b"", timeout=2)).data == b"ok"
    finally:
        await serving.close()
        await asking.close()


async def test_a_cancelled_flush_leaves_the_connection_working(
    bus: Bus, served: str
) -> None:
    # nats-py would leave the cancelled flush's PONG future behind and its read loop would die
    # on the next PONG: every later request on the connection would time out.
    for _ in range(5):
        pending = asyncio.create_task(flush(bus.nc))
        await asyncio.sleep(0)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    await flush(bus.nc)
    assert (await bus.request(served, Add(a=2, b=3), Sum, timeout_s=2)).total == 5


async def test_service_keeps_serving_across_nats_server_restart(
    nats_factory: Callable[..., EmbeddedNats], unique: str
) -> None:
    server = nats_factory()
    settings = Settings.from_env({"QUANTOPS_NATS_URL": server.url})
    service = Bus(await connect_nats(settings, name="svc", service="svc"), service="svc")
    client = Bus(await connect_nats(settings, name="client"), service="client", timeout_s=2)
    subject = f"test.{unique}.restart"
    await service.serve(_op(subject), add)
    assert (await client.request(subject, Add(a=1, b=1), Sum)).total == 2

    server.stop()
    await asyncio.sleep(0.5)  # not a synchronisation: the outage lasts a while
    server.start()

    async def served() -> Sum | None:
        try:
            return await client.request(subject, Add(a=20, b=1), Sum, timeout_s=0.5)
        except errors.QuantopsError:
            return None

    # Both sides reconnect on their own; the subscription is re-made.
    result = await eventually(served, timeout_s=30, interval_s=0.25,
                              what="the request served after the restart")
    assert result.total == 21
    await client.close()
    await service.close()


class Who(Message):
    principal: str
    role: str


async def test_a_bus_without_the_key_calls_with_the_token_it_was_granted(
        nats_server: EmbeddedNats, unique: str) -> None:
    """As the ``client`` NATS user does: no bus key, a token from the gateway on every request
    (``Bus.caller_token``); the keyed service believes the token, and nothing without it."""
    key = "bus-key-" + "k" * 40
    url = {"QUANTOPS_NATS_URL": nats_server.url}
    service = await Bus.connect(Settings.from_env({**url, "QUANTOPS_BUS_KEY": key}),
                                service="svc")
    client = await Bus.connect(Settings.from_env(url), service="client")

    async def who(req: Add, ctx: Context) -> Who:
        return Who(principal=ctx.principal, role=ctx.role)

    subject = f"test.{unique}.who"
    await service.serve(Operation(subject, Add, Who, Role.OPERATOR, "who asks"), who)
    try:
        with pytest.raises(errors.Unauthenticated):
            await client.request(subject, Add(a=1, b=1), Who)
        client.caller_token = bustokens.sign(key.encode(), "alice", "viewer")
        with pytest.raises(errors.Forbidden):
            await client.request(subject, Add(a=1, b=1), Who)
        client.caller_token = bustokens.sign(key.encode(), "alice", "operator")
        assert await client.request(subject, Add(a=1, b=1), Who) == Who(principal="alice",
                                                                         role="operator")
    finally:
        await client.close()
        await service.close()
