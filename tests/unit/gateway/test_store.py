"""The auth store, both implementations through one interface: SQLite (one process) and
JetStream KV (replicas). Conditional writes happen once; the listener hears every change; the
first admin is created at most once; a user goes with its keys and tokens."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from services.gateway.auth.accounts import new_user
from services.gateway.auth.store import AuthStore, KeyRow, RefreshRow, UserRow
from services.gateway.auth.store_kv import KvAuthStore
from services.gateway.auth.store_sqlite import MIGRATIONS, SqliteAuthStore
from shared.natsserver import EmbeddedNats

pytestmark = pytest.mark.timeout(30)
Opener = Callable[[], contextlib.AbstractAsyncContextManager[AuthStore]]


def _key(key_id: str, user: str, uid: str = "") -> KeyRow:
    return KeyRow(id=key_id, user=user, label="", role=None, secret_hash="h", created_at=0,
                  expires_at=None, revoked_at=None, uid=uid)


def _refresh(token_id: str, user: UserRow, session: str, expires_at: float) -> RefreshRow:
    return RefreshRow(id=token_id, session=session, user=user.name, uid=user.uid,
                      secret_hash="s", expires_at=expires_at, used_at=None)


class Recorder:
    """A ``ChangeListener`` that writes down what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, Any]] = []

    def user_changed(self, name: str, user: UserRow | None) -> None:
        self.heard.append(("user", name, user.role if user else None))

    def key_changed(self, key_id: str, key: KeyRow | None) -> None:
        self.heard.append(("key", key_id, "revoked" if key and key.revoked_at else key and "ok"))

    def session_revoked(self, session: str, until: float) -> None:
        self.heard.append(("session", session, until > time.time()))


@pytest.fixture(params=["sqlite", "kv"])
def opener(request: pytest.FixtureRequest, tmp_path: Path, nats_server: EmbeddedNats,
           unique: str) -> Opener:
    """Opens the same store (one file, or one bucket) each time it is called."""

    @contextlib.asynccontextmanager
    async def open_sqlite() -> AsyncIterator[AuthStore]:
        store = await SqliteAuthStore.open(tmp_path / "auth.db")
        try:
            yield store
        finally:
            await store.close()

    @contextlib.asynccontextmanager
    async def open_kv() -> AsyncIterator[AuthStore]:
        nc = await nats.connect(nats_server.url)
        store = await KvAuthStore.open(nc, refresh_ttl_s=3600,
                                       bucket=f"auth_{unique}")
        try:
            yield store
        finally:
            await store.close()
            await nc.close()

    return open_sqlite if request.param == "sqlite" else open_kv


async def test_first_admin_is_created_once_and_survives_a_restart(opener: Opener) -> None:
    admin = new_user("admin", "admin", None)
    async with opener() as store:
        assert await store.create_first_admin(admin, _key("k1", "admin", admin.uid))
        assert not await store.create_first_admin(new_user("admin2", "admin", None),
                                                  _key("k2", "admin2"))
    async with opener() as store:  # a second start: data intact, still only one admin
        assert [u.name for u in await store.list_users()] == ["admin"]
        assert not await store.create_first_admin(new_user("admin2", "admin", None),
                                                  _key("k2", "admin2"))
        assert await store.get_key("k2") is None
        assert (await store.get_key("k1")) == _key("k1", "admin", admin.uid)


async def test_deleting_a_user_deletes_its_keys_and_tokens(opener: Opener) -> None:
    async with opener() as store:
        bob = new_user("bob", "viewer", None)
        assert await store.insert_user(bob)
        assert not await store.insert_user(new_user("bob", "viewer", None))
        assert await store.insert_key(_key("kb", "bob", bob.uid))
        await store.insert_refresh(_refresh("r1", bob, "s1", time.time() + 60))
        assert await store.delete_user("bob")
        assert not await store.delete_user("bob")
        assert await store.get_key("kb") is None and await store.get_refresh("r1") is None
        assert await store.list_keys(user="bob") == []
        assert not await store.insert_key(_key("kc", "bob"))  # no owner, no key


async def test_conditional_writes_happen_once(opener: Opener) -> None:
    async with opener() as store:
        ann = new_user("ann", "viewer", None)
        assert await store.insert_user(ann)
        assert await store.insert_key(_key("ka", "ann", ann.uid))
        assert await store.revoke_key("ka", 5.0)
        assert not await store.revoke_key("ka", 6.0)
        assert (await store.get_key("ka")).revoked_at == 5.0  # type: ignore[union-attr]
        assert not await store.revoke_key("nope", 6.0)
        await store.insert_refresh(_refresh("r2", ann, "s2", time.time() + 60))
        assert await store.use_refresh("r2", 7.0)
        assert not await store.use_refresh("r2", 8.0)
        assert (await store.get_refresh("r2")).used_at == 7.0  # type: ignore[union-attr]
        updated = await store.set_role("ann", "operator")
        assert updated is not None and updated.role == "operator" and updated.uid == ann.uid
        assert await store.set_role("nobody", "admin") is None
        assert await store.set_password("ann", "$argon2id$x")
        assert (await store.get_user("ann")).password_hash == "$argon2id$x"  # type: ignore[union-attr]


async def test_the_listener_hears_the_current_state_then_every_change(opener: Opener) -> None:
    async with opener() as store:
        cy = new_user("cy", "viewer", None)
        assert await store.insert_user(cy)
        assert await store.insert_key(_key("kc1", "cy", cy.uid))
        heard = Recorder()
        await store.follow(heard)
        assert heard.heard == [("user", "cy", "viewer"), ("key", "kc1", "ok")]
        heard.heard.clear()
        await store.set_role("cy", "admin")
        assert await store.revoke_key("kc1", time.time())
        await store.revoke_session("sess1", time.time() + 60)
        assert await store.delete_user("cy")
        assert ("user", "cy", "admin") in heard.heard
        assert ("key", "kc1", "revoked") in heard.heard
        assert ("session", "sess1", True) in heard.heard
        assert heard.heard[-1] == ("user", "cy", None)
        assert "sess1" in await store.revoked_sessions(time.time())


async def test_listings_page_in_order(opener: Opener) -> None:
    async with opener() as store:
        for name in ("d.e", "da", "db"):  # a dot in a name survives the KV key encoding
            user = new_user(name, "viewer", None)
            assert await store.insert_user(user)
            assert await store.insert_key(_key(f"k{name.replace('.', '')}", name, user.uid))
        assert [u.name for u in await store.list_users(limit=2)] == ["d.e", "da"]
        assert [u.name for u in await store.list_users(after="da")] == ["db"]
        assert (await store.get_user("d.e")) is not None
        assert [k.id for k in await store.list_keys(limit=2)] == ["kda", "kdb"]
        assert [k.id for k in await store.list_keys(user="d.e")] == ["kde"]
        assert [k.id for k in await store.list_keys(after="kda")] == ["kdb", "kde"]
        # Names and ids no row can have are simply not found.
        assert await store.get_user("../x") is None and await store.get_key("a.b") is None


async def test_purge_forgets_expired_tokens_and_revocations(opener: Opener) -> None:
    async with opener() as store:
        eve = new_user("eve", "viewer", None)
        assert await store.insert_user(eve)
        now = time.time()
        await store.insert_refresh(_refresh("old", eve, "s3", now - 1))
        await store.insert_refresh(_refresh("new", eve, "s4", now + 3600))
        await store.revoke_session("s5", now + 60)
        await store.purge_expired(now + 2 * 24 * 3600)  # later than every expiry above
        assert await store.get_refresh("old") is None and await store.get_refresh("new") is None
        assert await store.revoked_sessions(now) == {}


async def test_sqlite_migrates_once_and_keeps_keys_made_before_uids(tmp_path: Path) -> None:
    path = tmp_path / "auth.db"
    with sqlite3.connect(path) as db:  # a database of the first release
        db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
        db.execute("INSERT INTO users VALUES ('old', 'u1', 'admin', NULL, 0)")
        db.execute("INSERT INTO api_keys VALUES ('ko', 'old', '', NULL, 'h', 0, NULL, NULL)")
    store = await SqliteAuthStore.open(path)
    assert await store.migrate() == len(MIGRATIONS)
    assert (await store.get_key("ko")) == _key("ko", "old")  # uid "": from before the field
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
