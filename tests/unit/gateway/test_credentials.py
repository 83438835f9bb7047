"""Key and token formats, the cache fingerprint, and argon2 verification off the loop."""

from __future__ import annotations

from services.gateway.auth import credentials
from services.gateway.auth.credentials import Argon2Runner


def test_api_key_round_trip_and_refusals() -> None:
    key_id, secret, key = credentials.new_api_key()
    assert key == f"qo_{key_id}_{secret}"
    assert credentials.parse_api_key(key) == (key_id, secret)
    for bad in ("", "qo_", f"qo_{key_id}", f"qo_{key_id}_short", f"xx_{key_id}_{secret}",
                f"qo_{key_id.upper()}_{secret}", f"qo_{key_id}_{secret}!", key + "\n"):
        assert credentials.parse_api_key(bad) is None, bad


def test_refresh_token_round_trip() -> None:
    token_id, secret, token = credentials.new_refresh_token()
    assert credentials.parse_refresh_token(token) == (token_id, secret)
    assert credentials.parse_refresh_token(token.replace("qor_", "qo_")) is None


def test_fingerprint_is_keyed_and_stable() -> None:
    a = credentials.fingerprint("qo_x")
    assert a == credentials.fingerprint("qo_x") and a != credentials.fingerprint("qo_y")
    import hashlib

    assert a != hashlib.sha256(b"qo_x").digest()  # not a plain hash anyone could compute


async def test_argon2_runner_verifies() -> None:
    runner = Argon2Runner()
    encoded = await runner.hash(credentials.KEY_HASHER, "s3cret-s3cret-s3cret")
    assert encoded.startswith("$argon2id$")
    assert await runner.verify(credentials.KEY_HASHER, encoded, "s3cret-s3cret-s3cret")
    assert not await runner.verify(credentials.KEY_HASHER, encoded, "wrong")
    assert not await runner.verify(credentials.KEY_HASHER, None, "anything")
    assert not await runner.verify(credentials.KEY_HASHER, "not-a-hash", "anything")
