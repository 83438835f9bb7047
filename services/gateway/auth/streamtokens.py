"""Stream tokens: short-lived credentials for ``?access_token=`` on event-stream routes only.

A browser's ``EventSource`` cannot send an ``Authorization`` header, and an API key must not
travel in a URL (it lands in histories, proxies and logs). So a caller who is authenticated
asks ``POST /v1/auth/stream-token`` for a token that

- lives ``TTL_S`` seconds (enough to open a stream; a reconnect asks again),
- is accepted by the guard on ``text/event-stream`` routes and nowhere else,
- is signed with a key that lives only in this process,
- acts for the credential that asked for it: it is a signed copy of that credential's proof
  (user, user incarnation, key id, session), checked against the live view on every use like a
  cached proof, so a revoked key, an ended session or a deleted user stops it at once, and the
  role is the credential's current one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from typing import Final

import msgspec

from services.gateway.auth.authenticator import Authenticator, _Proof
from services.gateway.auth.roles import Principal

PREFIX: Final = "qos_"
TTL_S: Final = 60
QUERY_PARAMETER: Final = "access_token"
MAX_TOKEN_CHARS: Final = 1024
_KEY: Final = secrets.token_bytes(32)


class _Claims(msgspec.Struct, frozen=True, array_like=True):
    user: str
    uid: str
    key_id: str
    session: str
    expires_at: float


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Claims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str) -> str:
    return _b64(hmac.digest(_KEY, payload.encode(), hashlib.sha256))


def issue(principal: Principal, authn: Authenticator, *, ttl_s: int = TTL_S
          ) -> tuple[str, int]:
    """A token acting for ``principal`` and its lifetime in seconds."""
    user = authn.view.users[principal.name]  # the guard just found this user
    claims = _Claims(principal.name, user.uid, principal.key_id, principal.session,
                     time.time() + ttl_s)
    payload = _b64(_encode(claims))
    return f"{PREFIX}{payload}.{_sign(payload)}", ttl_s


def verify(token: str, authn: Authenticator) -> Principal | None:
    """The principal a stream token acts for now, or None (bad, expired or revoked)."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX):
        return None
    payload, _, signature = token.removeprefix(PREFIX).partition(".")
    if not hmac.compare_digest(signature.encode(), _sign(payload).encode()):
        return None
    try:
        claims = _decode(_unb64(payload))
    except (msgspec.DecodeError, binascii.Error, ValueError):
        return None
    now = time.time()
    if claims.expires_at <= now:
        return None
    proof = _Proof(claims.user, claims.uid, claims.key_id, claims.session, claims.expires_at)
    # The very check every cached proof goes through: the live facts, never cached.
    return authn._principal(proof, now)
