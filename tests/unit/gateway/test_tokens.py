"""Access tokens: only our own, unexpired, complete access tokens pass; the signing key file."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest

from services.gateway.auth.tokens import JwtSecretError, TokenCodec, load_signing_key

KEY = "k" * 64


def test_issue_then_verify() -> None:
    codec = TokenCodec(KEY, ttl_s=60)
    token, expires_at = codec.issue("alice", "uid1", "sid1")
    claims = codec.verify(token)
    assert claims is not None
    assert (claims.user, claims.uid, claims.session) == ("alice", "uid1", "sid1")
    assert expires_at == pytest.approx(time.time() + 60, abs=2)
    assert "role" not in jwt.decode(token, options={"verify_signature": False})


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"iss": "quantops", "typ": "access", "sub": "a", "uid": "u",
                               "sid": "s", "jti": "j", "iat": now, "exp": now + 60}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("token", [
    jwt.encode(_claims(), "another-key-another-key-another-key!", algorithm="HS256"),
    jwt.encode(_claims(exp=int(time.time()) - 60), KEY, algorithm="HS256"),
    jwt.encode(_claims(typ="refresh"), KEY, algorithm="HS256"),
    jwt.encode(_claims(iss="someone-else"), KEY, algorithm="HS256"),
    jwt.encode(_claims(sid=None), KEY, algorithm="HS256"),
    jwt.encode(_claims(sub=5), KEY, algorithm="HS512"),
    jwt.encode(_claims(), None, algorithm="none"),
    "not.a.jwt", "", "eyJ" * 100,
])
def test_refuses_foreign_expired_incomplete_or_garbage(token: str) -> None:
    assert TokenCodec(KEY, ttl_s=60).verify(token) is None


def test_signing_key_generated_once_0600(tmp_path: Path) -> None:
    path = tmp_path / "gw" / "jwt-secret"
    first = load_signing_key("", path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key("", path) == first
    assert load_signing_key("c" * 32, path) == "c" * 32
    with pytest.raises(JwtSecretError, match="QUANTOPS_GATEWAY_JWT_SECRET"):
        load_signing_key("short", path)
