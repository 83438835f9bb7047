"""JWT access tokens (HS256) and the signing key they are made with.

An access token is short-lived and self-contained: ``sub`` (user name), ``uid`` (the user's
identity, so a deleted and re-created name does not inherit old tokens), ``sid`` (the login
session, revoked as a whole by logout or a refresh-token replay), ``jti``, ``iat``, ``exp``,
``iss``, ``typ``. The role is deliberately absent: it is read from the user table on every
request, so a role change takes effect at once.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jwt

ISSUER: Final = "quantops"
ALGORITHM: Final = "HS256"
MIN_SECRET_CHARS: Final = 32
_REQUIRED = ["exp", "iat", "sub", "jti", "sid", "uid", "typ", "iss"]
# Clocks of one machine agree; a little leeway absorbs second rounding only.
_LEEWAY_S: Final = 2


class JwtSecretError(ValueError):
    """The configured signing secret is unusable (message names the variable)."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user: str
    uid: str
    session: str
    expires_at: float


def load_signing_key(configured: str, path: Path) -> str:
    """The configured secret, else the one in ``path``, else a new one written there (0600)."""
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise JwtSecretError(
                f"QUANTOPS_GATEWAY_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters")
        return configured
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together agree on one key, the first one's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < MIN_SECRET_CHARS:
            raise JwtSecretError(f"{path} holds a signing key that is too short") from None
        return key
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


class TokenCodec:
    """Issues and checks access tokens with one HS256 key."""

    def __init__(self, key: str, *, ttl_s: int) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, user: str, uid: str, session: str) -> tuple[str, float]:
        """A signed access token and its expiry (unix seconds)."""
        now = int(time.time())
        claims = {"iss": ISSUER, "typ": "access", "sub": user, "uid": uid, "sid": session,
                  "jti": uuid.uuid4().hex, "iat": now, "exp": now + self.ttl_s}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), float(now + self.ttl_s)

    def verify(self, token: str) -> AccessClaims | None:
        """The claims of a valid, unexpired token of ours; None for anything else."""
        try:
            c = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                           leeway=_LEEWAY_S, options={"require": _REQUIRED})
        except Exception:  # whatever a client sent that fails to verify is just not a token
            return None
        fields = (c.get("sub"), c.get("uid"), c.get("sid"))
        if c.get("typ") != "access" or not all(isinstance(f, str) for f in fields):
            return None
        return AccessClaims(user=c["sub"], uid=c["uid"], session=c["sid"],
                            expires_at=float(c["exp"]))
