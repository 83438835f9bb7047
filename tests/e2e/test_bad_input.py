"""No message can crash a service: malformed JSON and wrong-typed fields on every request
subject get a structured ``invalid_request`` reply, and every service still answers after."""

from __future__ import annotations

import asyncio
import enum

import msgspec
import nats
import pytest

from shared import errors, subjects
from shared.subjects import STATUS_ERROR, Header
from tests.support import System, assert_all_healthy


def request_subjects() -> list[str]:
    """Every member of every ``<Service>Subject`` enum: the whole request/reply surface."""
    out: list[str] = []
    for name in dir(subjects):
        obj = getattr(subjects, name)
        if (isinstance(obj, type) and issubclass(obj, enum.StrEnum)
                and name.endswith("Subject") and name != "Subject"):
            out.extend(str(m) for m in obj)
    return sorted(set(out))


MALFORMED = [b"{not json", b"[1, 2, 3]", b'"a string"', b"\xff\xfe\x00", b"{" * 10_000]
# Common field names with the wrong type; a request that has any of them must refuse it.
WRONG_TYPES = msgspec.json.encode({
    "namespace": 1, "key": 2, "name": 3, "model": 4, "version": [], "task_id": {},
    "type": 5, "value": None, "limit": "many", "cursor": 6, "priority": 7, "alias": 8,
    "input": "not-an-object", "expected_revision": "x", "tasks": "y",
})


async def _ask(nc: nats.NATS, subject: str, payload: bytes) -> tuple[bool, errors.ErrorBody | None]:
    reply = await nc.request(subject, payload, timeout=5)
    if reply.headers and reply.headers.get(Header.STATUS) == STATUS_ERROR:
        return False, msgspec.json.decode(reply.data, type=errors.ErrorReply).error
    return True, None


def test_every_service_declares_its_subjects() -> None:
    found = request_subjects()
    for prefix in ("state.", "registry.", "executor."):
        assert any(s.startswith(prefix) for s in found), prefix


@pytest.mark.parametrize("subject", request_subjects())
async def test_malformed_and_wrong_typed_requests(system: System, subject: str) -> None:
    nc = await nats.connect(system.nats_url)
    try:
        for payload in MALFORMED:
            ok, err = await _ask(nc, subject, payload)
            assert not ok and err is not None, (subject, payload[:20])
            assert err.code == "invalid_request", (subject, err)
            assert err.message
        ok, err = await _ask(nc, subject, WRONG_TYPES)
        # A request whose fields are all optional and named otherwise may accept the object;
        # what must never happen is anything but a clean answer.
        assert ok or (err is not None and err.code in ("invalid_request", "not_found")), err
    finally:
        await nc.close()


async def test_every_service_still_healthy_after_the_barrage(system: System) -> None:
    await assert_all_healthy(system)
    await asyncio.sleep(0)
