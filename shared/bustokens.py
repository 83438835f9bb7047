"""Who is asking, proven: short-lived tokens that name a principal and its role on every request.

NATS permissions say which *user* may publish on a subject; they cannot say on whose behalf.
The gateway authenticates people (API keys, logins) and then asks services over NATS, so the
principal has to travel with the message, and a header anyone can write is not a proof. The
gateway therefore signs ``{principal, role, expiry}`` with a key the services share
(``QUANTOPS_BUS_KEY``, HMAC-SHA256) and puts it in ``Quantops-Auth``; every service verifies it
before a handler runs (``shared.bus``), so an audit entry names a principal only the key's
holders could have vouched for. The executor holds the key too: a task acts on the registry and
state with the role its submitter had, never more (``RunContext.headers``).

Why not NATS auth callout: the server would then know each person, but a message delivered to a
service still does not say which user published it; the proof has to be in the message either way.
See docs/security.md for who holds which key and what each holder can do.

Format: ``base64url(json claims) "." base64url(hmac)``; compact, and verified in microseconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Final

import msgspec

from shared.errors import Unauthenticated
from shared.roles import RANK, Role

#: A request's proof lives this long: long enough for a slow HTTP call, too short to hoard.
DEFAULT_TTL_S: Final = 600.0
#: The same claims are signed once per interval and the token reused (gateway hot path).
MAX_TOKEN_CHARS: Final = 1024


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """What a token vouches for."""

    sub: str  # the principal
    role: Role
    exp: float  # unix seconds


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Claims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign(key: bytes, principal: str, role: str, *, ttl_s: float = DEFAULT_TTL_S,
         now: float | None = None) -> str:
    """A token for ``principal`` acting as ``role`` until ``ttl_s`` from now."""
    claims = Claims(sub=principal, role=Role(role), exp=(now or time.time()) + ttl_s)
    payload = _b64(_encode(claims))
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, *, now: float | None = None) -> Claims:
    """The claims of a valid, unexpired token; ``Unauthenticated`` otherwise."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise _refused("malformed bus token")
    payload, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise _refused("bus token signature does not verify")
    try:
        claims = _decode(_unb64(payload))
    except (msgspec.DecodeError, binascii.Error, ValueError) as e:
        raise _refused("bus token claims are unreadable") from e
    if claims.exp < (now or time.time()):
        raise _refused("bus token expired")
    if claims.role not in RANK or not claims.sub:
        raise _refused("bus token names no principal")
    return claims


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated(message, details={"reason": "bus_token"})


class Signer:
    """Signs tokens, reusing one per (principal, role) until it is half-way to expiry."""

    def __init__(self, key: bytes, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._key = key
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    def token(self, principal: str, role: str) -> str:
        now = time.time()
        cached = self._cache.get((principal, role))
        if cached is not None and cached[1] > now:
            return cached[0]
        if len(self._cache) >= 10_000:
            self._cache.clear()
        token = sign(self._key, principal, role, ttl_s=self._ttl_s, now=now)
        self._cache[(principal, role)] = (token, now + self._ttl_s / 2)
        return token


class Verifier:
    """Verifies tokens, remembering the claims of valid ones so each token's HMAC is checked
    once, not on every request it rides on (signers reuse a token for half its life).

    Expiry is still checked on every use, so a remembered token is refused the moment it
    expires, exactly as a fresh verification would. Only tokens that verified are remembered
    (a forged one costs its HMAC every time, as before); at most ``max_entries``, the oldest
    forgotten first.
    """

    def __init__(self, key: bytes, *, max_entries: int = 4096) -> None:
        self._key = key
        self._max_entries = max_entries
        self._claims: dict[str, Claims] = {}

    def verify(self, token: str, *, now: float | None = None) -> Claims:
        """The claims of a valid, unexpired token; ``Unauthenticated`` otherwise."""
        claims = self._claims.get(token)
        if claims is None:
            claims = verify(self._key, token, now=now)
            if len(self._claims) >= self._max_entries:
                del self._claims[next(iter(self._claims))]
            self._claims[token] = claims
        elif claims.exp < (now or time.time()):
            del self._claims[token]
            raise _refused("bus token expired")
        return claims
