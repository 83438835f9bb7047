"""Credentials to principal, fast: an in-memory view of users and keys, and a verification cache.

The view (users, active keys, revoked sessions) is kept current by the store (``follow``): it
hears of every committed change, this process's at once and, with the KV store, other
replicas' within the store's staleness bound. Every request is checked against it with dict
lookups only: a revoked key, a deleted user, a changed role or a logged-out session take effect
on the next request, cached or not. A view that the store cannot vouch for (older than
``max_staleness_s``) refuses every credential with 503 rather than trust what it remembers.

Only proofs are cached: "this credential's secret matched" (argon2 for API keys, the signature
for JWTs), keyed by an HMAC fingerprint so the cache holds no credential.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.auth import credentials
from services.gateway.auth.credentials import Argon2Runner
from services.gateway.auth.roles import Principal, lesser
from services.gateway.auth.store import AuthStore, KeyRow, UserRow
from services.gateway.auth.tokens import TokenCodec
from shared.errors import ServiceUnavailable

_MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class UserView:
    uid: str
    role: str
    password_tag: str = ""  # credentials.password_tag: sessions of another password are void


@dataclass(frozen=True, slots=True)
class KeyView:
    user: str
    role_cap: str | None
    expires_at: float | None
    uid: str  # the owner's incarnation; "" for keys older than the field


@dataclass(frozen=True, slots=True)
class _Proof:
    """What a verified credential established, until ``valid_until`` (wall clock)."""

    user: str
    uid: str
    key_id: str
    session: str
    valid_until: float


def _forget_nothing(*, key_id: str = "", user: str = "") -> None:
    pass


class LiveView:
    """The facts every request is checked against: a ``store.ChangeListener``.

    Args:
        on_drop: called when a key or a user incarnation stops counting, so whoever caches
            proofs of it (the ``Authenticator``) can let them go.
    """

    def __init__(self, on_drop: Callable[..., None] = _forget_nothing) -> None:
        self.users: dict[str, UserView] = {}
        self.keys: dict[str, KeyView] = {}
        self.revoked_sessions: dict[str, float] = {}
        self.on_drop = on_drop

    def user_changed(self, name: str, user: UserRow | None) -> None:
        old = self.users.get(name)
        if user is None:
            self.users.pop(name, None)
            for key_id in [k for k, v in self.keys.items() if v.user == name]:
                del self.keys[key_id]
        else:
            self.users[name] = UserView(user.uid, user.role,
                                        credentials.password_tag(user.password_hash))
        if old is not None and (user is None or user.uid != old.uid):
            self.on_drop(user=name)

    def key_changed(self, key_id: str, key: KeyRow | None) -> None:
        if key is not None and key.revoked_at is None:
            self.keys[key_id] = key_view(key)
        elif self.keys.pop(key_id, None) is not None:
            self.on_drop(key_id=key_id)

    def session_revoked(self, session: str, until: float) -> None:
        now = time.time()
        for sid in [s for s, exp in self.revoked_sessions.items() if exp <= now]:
            del self.revoked_sessions[sid]
        self.revoked_sessions[session] = max(until, self.revoked_sessions.get(session, 0.0))


def key_view(k: KeyRow) -> KeyView:
    return KeyView(user=k.user, role_cap=k.role, expires_at=k.expires_at, uid=k.uid)


def _same_owner(key_uid: str, user: UserView) -> bool:
    """A key counts only for the incarnation of its owner it was made for."""
    return not key_uid or key_uid == user.uid


class Authenticator:
    """Turns a presented credential (API key or access token) into a ``Principal`` or None.

    Args:
        store: where key hashes are read on a cache miss, and how current ``view`` is.
        view: the live facts (its drops are forwarded to ``forget``).
        codec: checks access tokens.
        cache_ttl_s: how long a proof is reused; 0 disables the cache.
        max_staleness_s: refuse (503) while the store says the view may be older than this.
    """

    def __init__(self, store: AuthStore, view: LiveView, codec: TokenCodec, runner: Argon2Runner,
                 *, cache_ttl_s: float, max_staleness_s: float = math.inf) -> None:
        self.store = store
        self.view = view
        self.codec = codec
        self.runner = runner
        self.cache_ttl_s = cache_ttl_s
        self.max_staleness_s = max_staleness_s
        self._cache: dict[bytes, _Proof] = {}
        self._proving: dict[bytes, asyncio.Future[_Proof | None]] = {}
        view.on_drop = self.forget

    async def authenticate(self, credential: str, *,
                           verify: Callable[[], bool] = lambda: True) -> Principal | None:
        """The principal of ``credential``, or None.

        ``verify()`` False refuses an API key that would need argon2 (not cached): the guard
        answers so for an address that has spent its failed attempts. It is asked only then,
        so a cached credential costs no rate-limit lookups.
        """
        now = time.time()
        fp = credentials.fingerprint(credential)
        proof = self._cache.get(fp)
        if proof is None or proof.valid_until <= now:
            proof = await self._prove_once(fp, credential, now, verify)
            if proof is None:
                return None
            self._remember(fp, proof, now)
        return self._principal(proof, now)

    async def _prove_once(self, fp: bytes, credential: str, now: float,
                          verify: Callable[[], bool]) -> _Proof | None:
        """One proof at a time per credential; requests that come while it is being proven
        share its answer. Without this, a busy client's key leaving the cache (every
        ``cache_ttl_s``) started an argon2 check per request in flight: two ran, the next 32
        queued for hundreds of milliseconds, and the rest were refused as saturated (429),
        every minute, for one valid key (``bench.bench_gateway`` past 60 seconds)."""
        pending = self._proving.get(fp)
        if pending is None:
            if not verify():  # refused without argon2 for this caller alone: not shared
                return await self._prove(credential, now, False)
            pending = asyncio.ensure_future(self._prove(credential, now, True))
            self._proving[fp] = pending
            pending.add_done_callback(lambda done: self._proved(fp, done))
        # Shielded: a caller that goes away must not cancel the others' proof.
        return await asyncio.shield(pending)

    def _proved(self, fp: bytes, done: asyncio.Future[_Proof | None]) -> None:
        self._proving.pop(fp, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter has gone, nobody else will

    def _principal(self, proof: _Proof, now: float) -> Principal | None:
        """Check a proof against the live view: the part that is never cached."""
        self._check_fresh()
        user = self.view.users.get(proof.user)
        if user is None or user.uid != proof.uid:
            return None
        if proof.key_id:
            key = self.view.keys.get(proof.key_id)
            if key is None or key.user != proof.user or not _same_owner(key.uid, user):
                return None
            if key.expires_at is not None and key.expires_at <= now:
                return None
            role = lesser(user.role, key.role_cap) if key.role_cap else user.role
            return Principal(proof.user, role, "api_key", key_id=proof.key_id)
        if proof.session in self.view.revoked_sessions or \
                credentials.session_tag(proof.session) != user.password_tag:
            return None  # logged out, or opened with a password since changed or reset
        return Principal(proof.user, user.role, "jwt", session=proof.session)

    def _check_fresh(self) -> None:
        lag_s = self.store.staleness_s()
        if lag_s > self.max_staleness_s:
            # Fail closed: a revocation made on another replica might be missing from the view.
            raise ServiceUnavailable(
                "the gateway cannot confirm its view of users and keys is current; retry",
                details={"staleness_s": round(lag_s, 1), "max_s": self.max_staleness_s})

    async def _prove(self, credential: str, now: float, verify: bool) -> _Proof | None:
        if credential.startswith(credentials.API_KEY_PREFIX + "_"):
            return await self._prove_key(credential, now) if verify else None
        claims = self.codec.verify(credential)
        if claims is None:
            return None
        return _Proof(claims.user, claims.uid, "", claims.session, claims.expires_at)

    async def _prove_key(self, credential: str, now: float) -> _Proof | None:
        parsed = credentials.parse_api_key(credential)
        # Unknown and revoked ids are refused before argon2: guessing costs the guesser only.
        if parsed is None or parsed[0] not in self.view.keys:
            return None
        key_id, secret = parsed
        row = await self.store.get_key(key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not await self.runner.verify(credentials.KEY_HASHER, row.secret_hash, secret):
            return None
        user = self.view.users.get(row.user)
        if user is None or not _same_owner(row.uid, user):
            return None
        until = now + self.cache_ttl_s
        if row.expires_at is not None:
            until = min(until, row.expires_at)
        return _Proof(row.user, user.uid, key_id, "", until)

    def _remember(self, fp: bytes, proof: _Proof, now: float) -> None:
        if self.cache_ttl_s <= 0:
            return
        if len(self._cache) >= _MAX_CACHED:
            self._cache = {k: p for k, p in self._cache.items() if p.valid_until > now}
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()  # a flood of distinct valid credentials: start over
        self._cache[fp] = proof

    def forget(self, *, key_id: str = "", user: str = "") -> None:
        """Drop proofs of a revoked key or a deleted user (the live view refuses them anyway;
        this frees the memory and keeps the rule obvious)."""
        self._cache = {fp: p for fp, p in self._cache.items()
                       if not ((key_id and p.key_id == key_id) or (user and p.user == user))}
