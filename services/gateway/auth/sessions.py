"""Login sessions: password login, refresh-token rotation, logout.

A login opens a session (``sid``) with one live refresh token. Each refresh marks the presented
token used and issues a new one in the same session; presenting a used token again means it was
copied, so the whole session is revoked (its access tokens stop working at once too, since every
request checks ``sid`` against the revoked set).
"""

from __future__ import annotations

import hmac
import time

from services.gateway.auth import credentials
from services.gateway.auth.authenticator import LiveView
from services.gateway.auth.credentials import Argon2Runner
from services.gateway.auth.lockout import LoginLockout
from services.gateway.auth.roles import Principal
from services.gateway.auth.store import AuthStore, RefreshRow
from services.gateway.auth.tokens import TokenCodec
from shared.contracts.auth import TokenPair
from shared.errors import InvalidRequest, Unauthenticated

_BAD_LOGIN = "wrong user name or password"
_BAD_REFRESH = "refresh token is invalid, expired or revoked"


class Sessions:
    def __init__(self, store: AuthStore, view: LiveView, codec: TokenCodec, runner: Argon2Runner,
                 *, refresh_ttl_s: int, lockout: LoginLockout) -> None:
        self.store = store
        self.view = view
        self.codec = codec
        self.runner = runner
        self.refresh_ttl_s = refresh_ttl_s
        self.lockout = lockout

    async def login(self, username: str, password: str) -> TokenPair:
        self.lockout.attempt(username)  # raises RateLimited while the name is locked
        user = await self.store.get_user(username)
        stored = user.password_hash if user else None
        # Verified even when the user or its password is missing, so timing tells nothing.
        ok = await self.runner.verify(credentials.PASSWORD_HASHER, stored, password)
        if not ok or user is None:
            raise Unauthenticated(_BAD_LOGIN)
        self.lockout.succeeded(username)
        return await self._issue(user.name, user.uid, credentials.new_session(stored))

    async def refresh(self, token: str) -> TokenPair:
        parsed = credentials.parse_refresh_token(token)
        row = await self.store.get_refresh(parsed[0]) if parsed else None
        now = time.time()
        if parsed is None or row is None or row.expires_at <= now or not hmac.compare_digest(
                row.secret_hash, credentials.sha256_hex(parsed[1])):
            raise Unauthenticated(_BAD_REFRESH)
        if row.session in self.view.revoked_sessions:
            raise Unauthenticated(_BAD_REFRESH)
        if row.used_at is not None or not await self.store.use_refresh(row.id, now):
            await self.revoke(row.session)
            raise Unauthenticated("refresh token was already used: the session is revoked")
        user = self.view.users.get(row.user)
        if user is None or user.uid != row.uid or \
                credentials.session_tag(row.session) != user.password_tag:
            raise Unauthenticated(_BAD_REFRESH)  # deleted, re-created, or password changed
        return await self._issue(row.user, row.uid, row.session)

    async def logout(self, principal: Principal) -> None:
        if principal.via != "jwt":
            raise InvalidRequest("logout ends a login session; to end an API key, revoke it "
                                 "with DELETE /v1/keys/{key_id}")
        await self.revoke(principal.session)

    async def revoke(self, session: str) -> None:
        """End a session: its refresh tokens are deleted, its access tokens refused."""
        # An access token of this session lives at most access TTL (+ leeway) from now. The
        # store tells the live view (``follow``), as it does every other replica's.
        await self.store.revoke_session(session, time.time() + self.codec.ttl_s + 5)

    async def _issue(self, user: str, uid: str, session: str) -> TokenPair:
        token_id, secret, refresh = credentials.new_refresh_token()
        now = time.time()
        await self.store.insert_refresh(RefreshRow(
            id=token_id, session=session, user=user, uid=uid,
            secret_hash=credentials.sha256_hex(secret), expires_at=now + self.refresh_ttl_s,
            used_at=None))
        access, expires_at = self.codec.issue(user, uid, session)
        return TokenPair(access_token=access, expires_in=int(expires_at - now),
                         refresh_token=refresh, refresh_expires_in=self.refresh_ttl_s)
