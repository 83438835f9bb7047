"""Garbage on every request subject of the catalog (issue 14): empty, truncated, 5 MB,
wrong-typed, 50,000-level-nested, top-level-array and invalid-UTF-8 bodies each get a
structured error reply (never ``internal``), and every service keeps answering health."""

from __future__ import annotations

from typing import Any

import msgspec
import nats
import pytest

from shared import errors
from shared.contracts.base import HealthReply
from shared.subject_catalog import OPERATIONS, Operation, missing_subjects
from shared.subjects import STATUS_ERROR, Header
from tests.support import System, assert_all_healthy

REQUESTS = [op for op in OPERATIONS if not op.subject.endswith(".health")]
HEALTH = [op for op in OPERATIONS if op.subject.endswith(".health")]

GARBAGE: dict[str, bytes] = {
    "empty": b"",
    "truncated": b'{"namespace": "n", "key": "k", "val',
    "5MB": b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}',
    "nested-50000": b"[" * 50_000 + b"]" * 50_000,
    "nested-in-object": b'{"a": ' + b"{" * 2_000 + b"}" * 2_000 + b"}",
    "top-level-array": b"[1, 2, 3]",
    "top-level-string": b'"a string"',
    "invalid-utf8": b"\xff\xfe\x00",
    "invalid-utf8-in-a-string": b'{"name": "\xff\xfe", "namespace": "\xc3\x28"}',
}
#: What a client's mistake may be answered with; ``internal`` never.
CLIENT_CODES = {"invalid_request", "payload_too_large"}


def _wrong(info: Any) -> Any:
    """A JSON value of the wrong type for a field of type ``info``; ``...`` if any fits."""
    match info:
        case msgspec.inspect.StrType() | msgspec.inspect.EnumType() | msgspec.inspect.LiteralType():
            return 12345
        case msgspec.inspect.IntType() | msgspec.inspect.FloatType():
            return "12"  # a number in a string: strict decoding refuses it
        case msgspec.inspect.BoolType():
            return 0  # never false
        case msgspec.inspect.ListType() | msgspec.inspect.DictType() | \
                msgspec.inspect.StructType():
            return "not-a-container"
        case msgspec.inspect.DateTimeType():
            return 1526
        case msgspec.inspect.UnionType(types=types):
            kinds = {type(t) for t in types}
            if msgspec.inspect.StrType in kinds or msgspec.inspect.AnyType in kinds:
                return [[]]
            return "wrong"
    return ...


def wrong_typed(op: Operation) -> bytes | None:
    """The request with every field the wrong type (None when no field can be wrong)."""
    fields = msgspec.inspect.type_info(op.request).fields  # type: ignore[attr-defined]
    body = {f.encode_name: _wrong(f.type) for f in fields}
    body = {k: v for k, v in body.items() if v is not ...}
    return msgspec.json.encode(body) if body else None


async def _ask(nc: nats.NATS, subject: str, payload: bytes) -> errors.ErrorBody | None:
    reply = await nc.request(subject, payload, timeout=10)
    if reply.headers and reply.headers.get(Header.STATUS) == STATUS_ERROR:
        return msgspec.json.decode(reply.data, type=errors.ErrorReply).error
    return None


def test_the_catalog_is_the_whole_surface() -> None:
    assert not missing_subjects()
    for prefix in ("state.", "registry.", "executor."):
        assert any(op.subject.startswith(prefix) for op in REQUESTS), prefix


@pytest.mark.parametrize("op", REQUESTS, ids=lambda op: op.subject)
async def test_garbage_gets_a_structured_error(system: System, op: Operation) -> None:
    nc = await nats.connect(system.nats_url)
    bodies = dict(GARBAGE)
    if (wrong := wrong_typed(op)) is not None:
        bodies["wrong-typed"] = wrong
    try:
        for name, payload in bodies.items():
            err = await _ask(nc, op.subject, payload)
            assert err is not None, (op.subject, name)
            assert err.code in CLIENT_CODES, (op.subject, name, err)
            assert err.message and len(err.message) < 4096, (op.subject, name)
    finally:
        await nc.close()


@pytest.mark.parametrize("op", HEALTH, ids=lambda op: op.subject)
async def test_health_refuses_garbage_and_still_answers(system: System,
                                                        op: Operation) -> None:
    nc = await nats.connect(system.nats_url)
    try:
        for name, payload in GARBAGE.items():
            err = await _ask(nc, op.subject, payload)
            assert err is not None and err.code in CLIENT_CODES, (op.subject, name, err)
        reply = await nc.request(op.subject, b"{}", timeout=5)
        assert msgspec.json.decode(reply.data, type=HealthReply).status == "ok"
    finally:
        await nc.close()


async def test_every_service_still_healthy_after_the_barrage(system: System) -> None:
    await assert_all_healthy(system)
