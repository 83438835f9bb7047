"""The auth store in one JetStream KV bucket, shared by every gateway replica.

Keys of the bucket (``Bucket.AUTH``, history 1, values are the rows as JSON):

- ``users.<name>``: ``UserRow``. Names may contain dots, which separate KV key tokens, so a dot
  is stored as ``=2E`` (``=`` is not allowed in names).
- ``keys.<key_id>``: ``KeyRow`` (argon2id hash of the secret, never the secret).
- ``refresh.<token_id>``: ``RefreshRow`` (SHA-256 of the secret).
- ``sessions.<session>``: ``{"until": t}``, a revoked login session.

Consistency:

- Every write is conditional on the revision it read: a create succeeds only if the key has no
  value, an update only if nobody wrote since the read (a read-modify-write retries on fresh
  data). Two replicas creating one user name, using one refresh token or revoking one key:
  exactly one wins.
- Reads of one row go to the stream leader (no direct get), so they see every committed write.
- Each replica follows the bucket (``shared.kvfeed``) into a mirror, which serves listings, and
  into the listener (the authenticator's live view). A write returns once this replica's feed
  has applied it, so the next request here sees it; other replicas see it when their feed
  delivers it (milliseconds), and ``staleness_s`` bounds how late that can be.
- Nothing is atomic across keys. Deleting a user deletes its keys and tokens first, the user
  last; a key is bound to its owner's uid, so one that outlives its owner (a crash, a key made
  on one replica while the owner is deleted on another) never works for a re-created user.
- Rows that expire (refresh tokens, revoked sessions) and keys of deleted users are removed
  with a delete marker that expires itself (``shared.kvbuckets``: the bucket refuses rollups,
  purges and message deletes, so no holder of the gateway's NATS credentials can wipe it); a
  deleted user leaves a permanent delete marker, so no replica can miss that deletion.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import nats.errors
from nats.aio.client import Client as NATS

from services.gateway.auth.store import ChangeListener, KeyRow, RefreshRow, UserRow
from services.gateway.auth.store_kv_bucket import (
    KEYS,
    REFRESH,
    SESSIONS,
    Bucketed,
    Mirror,
    Revoked,
    id_key,
    open_bucket,
    user_key,
)
from shared.errors import Conflict, QuantopsError, ServiceUnavailable
from shared.kvfeed import KvEntry, KvFeed
from shared.subjects import Bucket

log = logging.getLogger(__name__)


class KvAuthStore:
    """An ``AuthStore`` in a JetStream KV bucket. Open with ``open``.

    Args:
        rows: conditional reads and writes of the bucket.
        mirror: the bucket as this replica's feed applied it.
        feed: the watch keeping ``mirror`` current.
        refresh_ttl_s: refresh-token lifetime; a revoked session stays revoked at least this
            long, so a token of it that another replica issued meanwhile never revives it.
    """

    def __init__(self, rows: Bucketed, mirror: Mirror, feed: KvFeed[KvEntry], *,
                 refresh_ttl_s: float) -> None:
        self.rows = rows
        self.mirror = mirror
        self.feed = feed
        self.refresh_ttl_s = refresh_ttl_s

    @classmethod
    async def open(cls, nc: NATS, *, refresh_ttl_s: float, replicas: int = 1,
                   bucket: str = Bucket.AUTH, start_timeout_s: float = 10.0,
                   settle_timeout_s: float = 5.0, check_interval_s: float = 0.25,
                   js_timeout_s: float = 5.0) -> KvAuthStore:
        """Create the bucket if needed and load it; raises ``ServiceUnavailable`` when NATS
        or the bucket cannot be reached in ``start_timeout_s``."""
        js = nc.jetstream(timeout=js_timeout_s)
        mirror = Mirror()
        feed = KvFeed(nc, f"KV_{bucket}", f"$KV.{bucket}.", mirror.apply_entry, entry=KvEntry,
                      check_interval_s=check_interval_s, timeout_s=js_timeout_s)
        try:
            kv = await open_bucket(js, bucket, replicas)
            await feed.start()
            loaded = await feed.wait_ready(start_timeout_s)
        except (nats.errors.Error, TimeoutError, QuantopsError) as e:
            await feed.stop()
            raise ServiceUnavailable(f"cannot open the auth bucket {bucket}: {e!r}") from e
        if not loaded:
            await feed.stop()
            raise ServiceUnavailable(f"the auth bucket {bucket} did not load within "
                                     f"{start_timeout_s}s")
        rows = Bucketed(js, kv, f"$KV.{bucket}.", feed, settle_timeout_s=settle_timeout_s)
        return cls(rows, mirror, feed, refresh_ttl_s=refresh_ttl_s)

    async def close(self) -> None:
        await self.feed.stop()

    async def follow(self, listener: ChangeListener) -> None:
        self.mirror.replay(listener)
        self.mirror.listener = listener

    def staleness_s(self) -> float:
        return self.feed.staleness_s()

    # -- users ---------------------------------------------------------------------------

    async def create_first_admin(self, user: UserRow, key: KeyRow) -> bool:
        """Every replica may try at once; the create of the user picks one."""
        if self.mirror.users:
            return False
        name, kid = user_key(user.name), id_key(KEYS, key.id)
        assert name is not None and kid is not None
        # The key first: a crash in between leaves a key bound to a uid no user has, rather
        # than an admin nobody can reach. Replicas with the same configured key share its id.
        made_key = await self.rows.create(kid, key) is not None
        if await self.rows.create(name, user) is not None:
            return True
        winner = await self.get_user(user.name)
        if made_key and (winner is None or winner.uid != key.uid):
            await self.rows.delete(kid, expiring=True)  # our candidate key: nobody's now
        return False

    async def insert_user(self, user: UserRow) -> bool:
        key = user_key(user.name)
        if key is None:
            raise ValueError(f"not a user name: {user.name!r}")  # the contract validates it
        return await self.rows.create(key, user) is not None

    async def get_user(self, name: str) -> UserRow | None:
        key = user_key(name)
        found = await self.rows.get(key) if key else None
        return found[1] if found else None

    async def list_users(self, *, limit: int | None = None, after: str = "") -> list[UserRow]:
        rows = [u for n, u in sorted(self.mirror.users.items()) if n > after]
        return rows if limit is None else rows[:limit]

    async def set_role(self, name: str, role: str) -> UserRow | None:
        key = user_key(name)
        if key is None:
            return None

        def change(u: UserRow) -> UserRow:
            return dataclasses.replace(u, role=role)

        return await self.rows.modify(key, change)

    async def set_password(self, name: str, password_hash: str) -> bool:
        key = user_key(name)
        if key is None:
            return False

        def change(u: UserRow) -> UserRow:
            return dataclasses.replace(u, password_hash=password_hash)

        return await self.rows.modify(key, change) is not None

    async def delete_user(self, name: str) -> bool:
        """The user's keys and refresh tokens go first, the user last, on the revision read:
        a user re-created meanwhile is not deleted by mistake."""
        key = user_key(name)
        for _ in range(3):
            found = await self.rows.get(key) if key else None
            if key is None or found is None:
                return False
            for key_id in [k for k, row in self.mirror.keys.items() if row.user == name]:
                await self.rows.delete(f"{KEYS}.{key_id}", expiring=True)
            for token_id in [t for t, row in self.mirror.refresh.items() if row.user == name]:
                await self.rows.delete(f"{REFRESH}.{token_id}", expiring=True)
            if await self.rows.delete(key, last=found[0]) is not None:
                return True
        raise Conflict(f"user {name!r} keeps changing; retry", details={"name": name})

    # -- API keys ------------------------------------------------------------------------

    async def insert_key(self, key: KeyRow) -> bool:
        owner = await self.get_user(key.user)
        if owner is None or (key.uid and key.uid != owner.uid):
            return False
        kid = id_key(KEYS, key.id)
        if kid is None or await self.rows.create(kid, key) is None:
            raise Conflict("key id in use", details={"key_id": key.id})  # 64 random bits
        return True

    async def get_key(self, key_id: str) -> KeyRow | None:
        key = id_key(KEYS, key_id)
        found = await self.rows.get(key) if key else None
        return found[1] if found else None

    async def list_keys(self, *, user: str | None = None, limit: int | None = None,
                        after: str = "") -> list[KeyRow]:
        users = self.mirror.users
        rows = [k for i, k in sorted(self.mirror.keys.items())
                if i > after and (user is None or k.user == user)
                # A key whose owner is gone (or re-created) is nobody's: not listed.
                and (o := users.get(k.user)) is not None and (not k.uid or k.uid == o.uid)]
        return rows if limit is None else rows[:limit]

    async def revoke_key(self, key_id: str, now: float) -> bool:
        key = id_key(KEYS, key_id)
        if key is None:
            return False

        def revoke(k: KeyRow) -> KeyRow | None:  # None: revoked already, nothing to write
            return dataclasses.replace(k, revoked_at=now) if k.revoked_at is None else None

        return await self.rows.modify(key, revoke) is not None

    # -- sessions --------------------------------------------------------------------------

    async def insert_refresh(self, r: RefreshRow) -> None:
        key = id_key(REFRESH, r.id)
        if key is None or await self.rows.create(key, r) is None:
            raise Conflict("refresh token id in use")  # 64 random bits

    async def get_refresh(self, token_id: str) -> RefreshRow | None:
        key = id_key(REFRESH, token_id)
        found = await self.rows.get(key) if key else None
        return found[1] if found else None

    async def use_refresh(self, token_id: str, now: float) -> bool:
        key = id_key(REFRESH, token_id)
        if key is None:
            return False

        def use(r: RefreshRow) -> RefreshRow | None:  # None: used already, a replay
            return dataclasses.replace(r, used_at=now) if r.used_at is None else None

        return await self.rows.modify(key, use) is not None

    async def revoke_session(self, session: str, expires_at: float) -> None:
        key = id_key(SESSIONS, session)
        if key is None:
            return
        # Outlives every refresh token the session may have: one issued on another replica
        # just now is not in this mirror, so it is not deleted below, but stays refused.
        until = max(expires_at, time.time() + self.refresh_ttl_s)

        def extend(r: Revoked) -> Revoked:
            return Revoked(max(r.until, until))

        if await self.rows.create(key, Revoked(until)) is None:
            await self.rows.modify(key, extend)
        for token_id in [t for t, row in self.mirror.refresh.items() if row.session == session]:
            await self.rows.delete(f"{REFRESH}.{token_id}", expiring=True)

    async def revoked_sessions(self, now: float) -> dict[str, float]:
        return {s: until for s, until in self.mirror.sessions.items() if until > now}

    async def purge_expired(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        expired = [f"{REFRESH}.{t}" for t, r in self.mirror.refresh.items() if r.expires_at <= now]
        expired += [f"{SESSIONS}.{s}" for s, until in self.mirror.sessions.items() if until <= now]
        for key in expired:
            await self.rows.delete(key, expiring=True)
        if expired:
            log.info("purged expired auth records", extra={"count": len(expired)})
