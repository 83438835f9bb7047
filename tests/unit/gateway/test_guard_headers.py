"""Reading the credential from headers: what is accepted, and a clear 401 for the rest."""

from __future__ import annotations

import pytest

from services.gateway.auth.guard import credential_of
from shared.errors import Unauthenticated


@pytest.mark.parametrize(("headers", "want"), [
    ([], None),
    ([(b"authorization", b"Bearer abc")], "abc"),
    ([(b"authorization", b"bearer   abc  ")], "abc"),
    ([(b"x-api-key", b"qo_k")], "qo_k"),
    ([(b"x-api-key", b"qo_k"), (b"authorization", b"Bearer jwt")], "jwt"),
])
def test_accepted(headers: list[tuple[bytes, bytes]], want: str | None) -> None:
    assert credential_of(headers) == want


@pytest.mark.parametrize("value", [
    b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer ", b"Token abc", b"", b"Bearer \xff\xfe",
    b"Bearer a\x00b", b"Bearer " + b"a" * 5000,
])
def test_unusable_header_is_401_not_500(value: bytes) -> None:
    with pytest.raises(Unauthenticated) as e:
        credential_of([(b"authorization", value)])
    assert e.value.details["reason"] == "invalid_credentials"
