"""The gateway's authentication, assembled: opened at start-up, closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Final, TextIO

from nats.aio.client import Client as NATS

from services.gateway.auth.accounts import Accounts
from services.gateway.auth.authenticator import Authenticator, LiveView
from services.gateway.auth.bootstrap import bootstrap_admin
from services.gateway.auth.clientaddr import parse_networks
from services.gateway.auth.credentials import Argon2Runner
from services.gateway.auth.guard import Guard, make_guard
from services.gateway.auth.lockout import LoginLockout
from services.gateway.auth.ratelimit import RateLimiter
from services.gateway.auth.sessions import Sessions
from services.gateway.auth.store import AuthStore
from services.gateway.auth.store_kv import KvAuthStore
from services.gateway.auth.store_sqlite import SqliteAuthStore
from services.gateway.auth.tokens import JwtSecretError, TokenCodec, load_signing_key
from shared.errors import QuantopsError
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: Expired refresh tokens and revocations are forgotten at start and this often: a long-lived
#: gateway would otherwise keep every refresh token it ever issued.
PURGE_INTERVAL_S: Final = 3600.0


def auth_dir(settings: Settings) -> Path:
    """``<data_dir>/gateway``: the database, the signing key, the first admin's key."""
    return settings.data_dir / "gateway"


def signing_key(settings: Settings) -> str:
    """The JWT signing key: configured, or generated once into the data dir (SQLite only)."""
    gw = settings.gateway
    if gw.auth_store == "kv" and not gw.jwt_secret.reveal():
        # A key generated per data dir would differ per replica: a token minted by one
        # replica would be refused by the others.
        raise SettingsError("invalid configuration QUANTOPS_GATEWAY_JWT_SECRET: "
                            "QUANTOPS_GATEWAY_AUTH_STORE=kv needs a signing secret shared by "
                            "every replica")
    try:
        return load_signing_key(gw.jwt_secret.reveal(), auth_dir(settings) / "jwt-secret")
    except JwtSecretError as e:
        raise SettingsError(f"invalid configuration: {e}") from e


async def open_store(settings: Settings, nc: NATS | None) -> AuthStore:
    """The store ``QUANTOPS_GATEWAY_AUTH_STORE`` names."""
    gw = settings.gateway
    if gw.auth_store == "sqlite":
        return await SqliteAuthStore.open(auth_dir(settings) / "auth.db")
    if nc is None:
        raise ValueError("auth_store=kv needs a NATS connection")
    return await KvAuthStore.open(nc, refresh_ttl_s=gw.refresh_token_ttl_s,
                                  replicas=settings.stream_replicas)


def login_lockout(settings: Settings) -> LoginLockout:
    gw = settings.gateway
    return LoginLockout(max_failures=gw.login_max_failures, lockout_s=gw.login_lockout_s,
                        max_lockout_s=gw.login_lockout_max_s, reset_s=gw.login_failure_reset_s)


class Auth:
    """Everything the guard and the auth routes use, with one lifecycle."""

    def __init__(self, store: AuthStore, view: LiveView, authn: Authenticator,
                 sessions: Sessions, accounts: Accounts, guard: Guard) -> None:
        self.store = store
        self.view = view
        self.authn = authn
        self.sessions = sessions
        self.accounts = accounts
        self.guard = guard
        self._purger: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, *, nc: NATS | None = None,
                   out: TextIO | None = None) -> Auth:
        """Open the store (migrating or loading it), follow it with the live view, create the
        first admin if due. ``nc`` is needed for ``auth_store=kv``.

        Raises ``SettingsError`` for an unusable JWT secret or bootstrap key.
        """
        gw, root = settings.gateway, auth_dir(settings)
        root.mkdir(parents=True, exist_ok=True)
        key = signing_key(settings)
        store = await open_store(settings, nc)
        try:
            await store.purge_expired()
            view, runner = LiveView(), Argon2Runner()
            await store.follow(view)
            await bootstrap_admin(store, view, runner, configured_key=gw.bootstrap_api_key.reveal(),
                                  key_dir=root, out=out)
        except BaseException:
            await store.close()
            raise
        codec = TokenCodec(key, ttl_s=gw.access_token_ttl_s)
        authn = Authenticator(store, view, codec, runner, cache_ttl_s=gw.api_key_cache_ttl_s,
                              max_staleness_s=gw.auth_max_staleness_s)
        guard = make_guard(
            authn, RateLimiter(gw.rate_limit_per_s, gw.rate_limit_burst),
            RateLimiter(gw.anonymous_rate_limit_per_s, gw.anonymous_rate_limit_burst),
            RateLimiter(gw.failed_auth_per_s, gw.failed_auth_burst),
            parse_networks(gw.trusted_proxies))
        auth = cls(store, view, authn,
                   Sessions(store, view, codec, runner, refresh_ttl_s=gw.refresh_token_ttl_s,
                            lockout=login_lockout(settings)),
                   Accounts(store, view, runner, max_keys_per_user=gw.max_keys_per_user), guard)
        auth._purger = asyncio.create_task(auth._purge_every(PURGE_INTERVAL_S))
        return auth

    async def _purge_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.store.purge_expired()
            except QuantopsError as e:  # NATS away: the next round will do it
                log.warning("purging expired auth records failed", extra={"error": str(e)})

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.store.close()
