"""``shared.natsclient.FastClient`` against a real nats-server and the stock nats-py
client: the same headers arrive, either way round, and the rules nats-py enforces (token names,
no CR/LF smuggled through a value) still hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import BadHeaderError, NoRespondersError, SlowConsumerError
from nats.errors import TimeoutError as NatsTimeoutError

from shared.bus import flush
from shared.natsclient import MAX_CACHED_NAMES, FastClient
from shared.natsserver import EmbeddedNats
from tests.support import eventually

pytestmark = pytest.mark.timeout(30)

HEADERS = {"X-Correlation-ID": "cid-1", "Quantops-Auth": "eyJzdWIiOiJhIn0.c2ln",
           "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
           "Padded": "  spaced value  ", "Unicode": "naïve ✓"}


@pytest.fixture
async def pair(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Client, Client]]:
    fast, stock = FastClient(), Client()
    await fast.connect(nats_server.url)
    await stock.connect(nats_server.url)
    yield fast, stock
    await fast.close()
    await stock.close()


async def _echo_headers(server: Client, subject: str) -> None:
    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)  # nats-py replies with the request's headers

    await server.subscribe(subject, cb=echo)
    await flush(server)  # nats-py's own flush can return before the server has the SUB


@pytest.mark.parametrize("fast_sends", [True, False])
async def test_headers_cross_between_fast_and_stock_clients(
        pair: tuple[Client, Client], unique: str, fast_sends: bool) -> None:
    fast, stock = pair
    sender, receiver = (fast, stock) if fast_sends else (stock, fast)
    await _echo_headers(receiver, f"hdr.{unique}")
    reply = await sender.request(f"hdr.{unique}", b"x", headers=HEADERS, timeout=5)
    expected = {k: v.strip() for k, v in HEADERS.items()}
    assert reply.headers == expected and reply.data == b"x"


async def test_crlf_in_a_value_cannot_add_a_header(pair: tuple[Client, Client],
                                                   unique: str) -> None:
    """A value carrying ``\\r\\n`` would end its line and start a forged one (here a role)."""
    fast, stock = pair
    await _echo_headers(stock, f"inj.{unique}")
    reply = await fast.request(f"inj.{unique}", b"", timeout=5,
                               headers={"Quantops-Principal": "bob\r\nQuantops-Role: admin"})
    assert reply.headers == {"Quantops-Principal": "bob  Quantops-Role: admin"}


@pytest.mark.parametrize("name", ["Bad Name", "Bad:Name", "Bad\r\nName", "Ünï"])
async def test_invalid_header_names_are_refused(pair: tuple[Client, Client], name: str,
                                                unique: str) -> None:
    fast, _ = pair
    for _ in range(2):  # refused every time: a refusal is never remembered as valid
        with pytest.raises(BadHeaderError):
            await fast.publish(f"bad.{unique}", b"", headers={name: "v"})


async def test_blank_names_are_skipped_and_unusual_names_not_remembered_forever(
        pair: tuple[Client, Client], unique: str) -> None:
    fast, stock = pair
    await _echo_headers(stock, f"many.{unique}")
    for i in range(MAX_CACHED_NAMES + 50):
        reply = await fast.request(f"many.{unique}", b"", timeout=5,
                                   headers={f"N{i}": str(i), "  ": "blank"})
        assert reply.headers == {f"N{i}": str(i)}
    assert isinstance(fast, FastClient)
    assert len(fast._header_names) <= MAX_CACHED_NAMES


async def test_received_names_with_whitespace_are_dropped_as_nats_py_does() -> None:
    raw = b"Good: 1\r\nBad Name: 2\r\nTab\tName: 3\r\nno-colon\r\n\xff\xfe: 4\r\nAlso:ok \r\n\r\n"
    assert FastClient._parse_header_lines(raw) == Client._parse_header_lines(raw) == {
        "Good": "1", "Also": "ok"}


async def test_status_replies_still_work(pair: tuple[Client, Client], unique: str) -> None:
    fast, _ = pair
    with pytest.raises(NoRespondersError):
        await fast.request(f"nobody.{unique}", b"", timeout=2)


async def test_jetstream_dedupe_header_still_honoured(pair: tuple[Client, Client],
                                                      unique: str) -> None:
    fast, _ = pair
    js = fast.jetstream()
    await js.add_stream(name=f"S{unique}", subjects=[f"js.{unique}"])
    first = await js.publish(f"js.{unique}", b"a", headers={"Nats-Msg-Id": "k1"})
    again = await js.publish(f"js.{unique}", b"a", headers={"Nats-Msg-Id": "k1"})
    assert again.seq == first.seq and again.duplicate
    await js.delete_stream(f"S{unique}")


async def test_concurrent_requests_each_get_their_own_reply_and_leave_nothing_behind(
        pair: tuple[Client, Client], unique: str) -> None:
    fast, stock = pair
    await _echo_headers(stock, f"many.{unique}")
    replies = await asyncio.gather(*(fast.request(f"many.{unique}", b"%d" % i, timeout=5)
                                     for i in range(500)))
    assert [r.data for r in replies] == [b"%d" % i for i in range(500)]
    assert fast._resp_map == {}


async def test_a_request_times_out_as_nats_py_does_and_is_forgotten(
        pair: tuple[Client, Client], unique: str) -> None:
    fast, stock = pair
    await stock.subscribe(f"silent.{unique}")  # takes it, never answers
    await flush(stock)
    with pytest.raises(NatsTimeoutError):
        await fast.request(f"silent.{unique}", b"", timeout=0.2)
    assert fast._resp_map == {}


async def test_a_cancelled_request_is_forgotten_and_its_late_reply_ignored(
        pair: tuple[Client, Client], unique: str) -> None:
    fast, stock = pair
    held: list[Msg] = []
    arrived = asyncio.Event()

    async def hold(msg: Msg) -> None:
        held.append(msg)
        arrived.set()

    await stock.subscribe(f"slow.{unique}", cb=hold)
    await flush(stock)
    request = asyncio.create_task(fast.request(f"slow.{unique}", b"", timeout=5))
    await asyncio.wait_for(arrived.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert fast._resp_map == {}
    await held[0].respond(b"late")  # nobody waits: dropped without error
    await _echo_headers(stock, f"after.{unique}")
    assert (await fast.request(f"after.{unique}", b"ok", timeout=5)).data == b"ok"


async def test_direct_delivery_takes_messages_from_the_read_loop_and_reports_refusals(
        nats_server: EmbeddedNats, unique: str) -> None:
    slow: list[Exception] = []

    async def on_error(e: Exception) -> None:
        slow.append(e)

    fast, stock = FastClient(), Client()
    await fast.connect(nats_server.url, error_cb=on_error)
    await stock.connect(nats_server.url)
    try:
        taken: list[bytes] = []
        sub = await fast.subscribe(f"direct.{unique}", cb=_never_called)
        fast.deliver_directly(sub, lambda m: bool(taken.append(m.data)) or m.data != b"refuse")
        await flush(fast)
        for data in (b"a", b"refuse", b"b"):
            await stock.publish(f"direct.{unique}", data)
        await flush(stock)
        await eventually(lambda: len(taken) == 3)
        assert taken == [b"a", b"refuse", b"b"]
        await eventually(lambda: len(slow) == 1)
        assert isinstance(slow[0], SlowConsumerError)
        await sub.unsubscribe()
        await stock.publish(f"direct.{unique}", b"after")
        await flush(stock)
        await flush(fast)
        assert taken == [b"a", b"refuse", b"b"] and sub._id not in fast._direct
    finally:
        await fast.close()
        await stock.close()


async def _never_called(msg: Msg) -> None:
    raise AssertionError("a directly delivered message reached the subscription's callback")
