"""Credential formats and hashing: API keys, refresh tokens, passwords.

API key: ``qo_<key_id>_<secret>``. The key id (public, 16 hex chars) finds the row; the secret
(256 random bits) is checked against its argon2id hash. Argon2 is slow by design, so a verified
key is cached in memory (``authenticator``), keyed by an HMAC of the whole key under a random
per-process key: the cache never holds a key, and a cache hit costs one HMAC.

Refresh token: ``qor_<token_id>_<secret>``, stored as SHA-256 of the secret. It is 256 random
bits used at most once, so a fast hash is enough (nobody can guess its preimage) and argon2 would
only add a denial-of-service lever.

Passwords: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.errors import RateLimited

API_KEY_PREFIX: Final = "qo"
REFRESH_PREFIX: Final = "qor"
_API_KEY = re.compile(r"^qo_([a-z0-9]{8,32})_([A-Za-z0-9_\-]{32,128})\Z")
_REFRESH = re.compile(r"^qor_([a-f0-9]{16})_([A-Za-z0-9_\-]{32,128})\Z")

MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 1024

PASSWORD_HASHER: Final = PasswordHasher()
# The secret is 256 random bits: argon2 here guards a stolen database, not a weak secret, so
# OWASP's minimum profile (19 MiB, 2 passes) is plenty and keeps a cache miss near 25 ms.
KEY_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Hashed once, verified against when a login names no known user, so timing does not tell.
_DUMMY_PASSWORD_HASH: Final = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))
_FINGERPRINT_KEY: Final = secrets.token_bytes(32)


def new_api_key() -> tuple[str, str, str]:
    """A fresh ``(key_id, secret, full_key)``."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return key_id, secret, f"{API_KEY_PREFIX}_{key_id}_{secret}"


def parse_api_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    m = _API_KEY.fullmatch(key)
    return (m[1], m[2]) if m else None


def new_refresh_token() -> tuple[str, str, str]:
    """A fresh ``(token_id, secret, full_token)``."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return token_id, secret, f"{REFRESH_PREFIX}_{token_id}_{secret}"


def parse_refresh_token(token: str) -> tuple[str, str] | None:
    m = _REFRESH.fullmatch(token)
    return (m[1], m[2]) if m else None


def password_tag(password_hash: str | None) -> str:
    """A short tag of a user's current password hash ("" while none is set).

    Every login session carries the tag of the password it was opened with (``new_session``);
    a session whose tag is no longer the user's is refused, so changing or resetting a
    password ends every session and refresh token opened before, on every replica at once.
    """
    return sha256_hex(password_hash)[:16] if password_hash else ""


def new_session(password_hash: str | None) -> str:
    """A session id bound to the password it was opened with: ``<random>-<password tag>``."""
    return f"{secrets.token_hex(16)}-{password_tag(password_hash)}"


def session_tag(session: str) -> str:
    return session.rpartition("-")[2] if "-" in session else "\0"


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def fingerprint(credential: str) -> bytes:
    """The cache key of a credential: an HMAC under a key that dies with the process."""
    return hmac.digest(_FINGERPRINT_KEY, credential.encode(), "sha256")


class Argon2Runner:
    """Argon2 off the event loop, at most ``slots`` at a time.

    The bound caps the CPU and memory a flood of wrong secrets can take; made per gateway (not
    per module) because a semaphore belongs to the event loop that first waits on it.
    """

    def __init__(self, slots: int = 2, max_waiting: int = 32) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.max_waiting = max_waiting
        self._waiting = 0

    async def hash(self, hasher: PasswordHasher, secret: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(hasher.hash, secret)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A slot, or ``RateLimited`` at once when ``max_waiting`` already queue for one: a
        flood of wrong secrets gets quick refusals instead of a queue every valid first-time
        check would have to wait through."""
        if self._waiting >= self.max_waiting:
            raise RateLimited("password and key checks are saturated; retry shortly",
                              details={"retry_after_s": 1})
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def verify(self, hasher: PasswordHasher, encoded: str | None, secret: str) -> bool:
        """True when ``secret`` matches; a missing hash still costs one verification."""
        async with self._slot():
            try:
                ok = await asyncio.to_thread(
                    hasher.verify, encoded or _DUMMY_PASSWORD_HASH, secret)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        return ok and encoded is not None
