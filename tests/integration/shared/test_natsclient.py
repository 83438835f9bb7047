"""``shared.natsclient.FastHeadersClient`` against a real nats-server and the stock nats-py
client: the same headers arrive, either way round, and the rules nats-py enforces (token names,
no CR/LF smuggled through a value) still hold."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import BadHeaderError, NoRespondersError

from shared.bus import flush
from shared.natsclient import MAX_CACHED_NAMES, FastHeadersClient
from shared.natsserver import EmbeddedNats

pytestmark = pytest.mark.timeout(30)

HEADERS = {"X-Correlation-ID": "cid-1", "Quantops-Auth": "eyJzdWIiOiJhIn0.c2ln",
           "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
           "Padded": "  spaced value  ", "Unicode": "naïve ✓"}


@pytest.fixture
async def pair(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Client, Client]]:
    fast, stock = FastHeadersClient(), Client()
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
    assert isinstance(fast, FastHeadersClient)
    assert len(fast._header_names) <= MAX_CACHED_NAMES


async def test_received_names_with_whitespace_are_dropped_as_nats_py_does() -> None:
    raw = b"Good: 1\r\nBad Name: 2\r\nTab\tName: 3\r\nno-colon\r\n\xff\xfe: 4\r\nAlso:ok \r\n\r\n"
    assert FastHeadersClient._parse_header_lines(raw) == Client._parse_header_lines(raw) == {
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
