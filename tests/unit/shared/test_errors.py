"""The error tree round-trips through its wire form, and every code has an HTTP status."""

from __future__ import annotations

import msgspec
import pytest

from services.gateway.problems import HTTP_STATUS
from shared import errors


@pytest.mark.parametrize("cls", list(errors.ERRORS_BY_CODE.values()))
def test_every_error_round_trips_over_the_wire(cls: type[errors.QuantopsError]) -> None:
    original = cls("something happened", details={"key": "k1", "current_revision": 7})
    wire = msgspec.json.encode(errors.ErrorReply(error=original.to_body()))
    back = errors.error_from_body(msgspec.json.decode(wire, type=errors.ErrorReply).error)
    assert type(back) is cls
    assert back.message == "something happened"
    assert back.details == {"key": "k1", "current_revision": 7}


def test_every_code_maps_to_an_http_status() -> None:
    assert set(errors.ERRORS_BY_CODE) <= set(HTTP_STATUS)
    assert HTTP_STATUS["revision_conflict"] == 412
    assert HTTP_STATUS["queue_full"] == 429


def test_unknown_remote_code_stays_readable() -> None:
    err = errors.error_from_body(errors.ErrorBody(code="brand_new", message="m"))
    assert type(err) is errors.QuantopsError
    assert err.details["remote_code"] == "brand_new"


def test_decode_failure_names_the_path() -> None:
    class Req(msgspec.Struct):
        count: int

    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b'{"count": "three"}', type=Req)
    err = errors.invalid_from_validation(info.value)
    assert err.code == "invalid_request"
    assert err.details["path"] == "$.count"
