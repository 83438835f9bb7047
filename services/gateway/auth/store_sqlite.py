"""The auth store in SQLite (aiosqlite), for one gateway process: ``quantops up``.

The schema evolves by numbered migrations applied at start-up (``PRAGMA user_version`` records
the last one applied); a migration is never edited once released, only appended. The process
that opened the database is its only writer, so the listener hears of each change right after
its commit, from the call that made it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import aiosqlite

from services.gateway.auth.store import ChangeListener, KeyRow, RefreshRow, UserRow

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        password_hash TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        role TEXT,
        secret_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked_at REAL
    );
    CREATE INDEX api_keys_user ON api_keys(user);
    CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        uid TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE INDEX refresh_tokens_session ON refresh_tokens(session);
    CREATE TABLE revoked_sessions (
        session TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    """,
    # The owner's uid on each key (KeyRow.uid); older keys keep "".
    "ALTER TABLE api_keys ADD COLUMN uid TEXT NOT NULL DEFAULT ''",
)


class _Nobody:
    """The listener until ``follow``: writes before it (tests, migrations) tell no one."""

    def user_changed(self, name: str, user: UserRow | None) -> None:
        pass

    def key_changed(self, key_id: str, key: KeyRow | None) -> None:
        pass

    def session_revoked(self, session: str, until: float) -> None:
        pass


_USER_COLS = "name, uid, role, password_hash, created_at"
_KEY_COLS = "id, user, label, role, secret_hash, created_at, expires_at, revoked_at, uid"
_REFRESH_COLS = "id, session, user, uid, secret_hash, expires_at, used_at"


class SqliteAuthStore:
    """The gateway's own small database (an ``AuthStore``). One writer: this process."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.listener: ChangeListener = _Nobody()

    @classmethod
    async def open(cls, path: Path) -> SqliteAuthStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Hashes are not secrets, but nobody else needs them; SQLite gives its -wal and -shm
        # files the database file's mode, so 0600 here covers all three.
        os.chmod(path.parent, 0o700)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.db.close()

    async def follow(self, listener: ChangeListener) -> None:
        for u in await self.list_users():
            listener.user_changed(u.name, u)
        for k in await self.list_keys():
            if k.revoked_at is None:  # revoked keys matter to listings only
                listener.key_changed(k.id, k)
        for session, until in (await self.revoked_sessions(time.time())).items():
            listener.session_revoked(session, until)
        self.listener = listener

    def staleness_s(self) -> float:
        return 0.0  # nobody else writes this database

    async def migrate(self) -> int:
        """Apply pending migrations, each in its own transaction; return the schema version."""
        version = await self._scalar("PRAGMA user_version")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits first; the script's own BEGIN/COMMIT keeps it atomic.
            try:
                await self.db.executescript(
                    f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
            except BaseException:
                if self.db.in_transaction:
                    await self.db.execute("ROLLBACK")
                raise
        return len(MIGRATIONS)

    async def _scalar(self, sql: str, *args: Any) -> Any:
        async with self.db.execute(sql, args) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.db.execute(sql, args) as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def _change(self, sql: str, *args: Any) -> int:
        async with self.db.execute(sql, args) as cur:
            return cur.rowcount

    # -- users ---------------------------------------------------------------------------

    async def create_first_admin(self, user: UserRow, key: KeyRow) -> bool:
        """Create ``user`` and ``key`` only if there is no user yet, atomically."""
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            if await self._scalar("SELECT count(*) FROM users"):
                await self.db.execute("ROLLBACK")
                return False
            await self._insert_user(user)
            await self._insert_key(key)
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        await self.db.execute("COMMIT")
        self.listener.user_changed(user.name, user)
        self.listener.key_changed(key.id, key)
        return True

    async def insert_user(self, user: UserRow) -> bool:
        """False when the name is taken."""
        try:
            await self._insert_user(user)
        except aiosqlite.IntegrityError:
            return False
        self.listener.user_changed(user.name, user)
        return True

    async def _insert_user(self, u: UserRow) -> None:
        await self.db.execute(f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?)",
                              (u.name, u.uid, u.role, u.password_hash, u.created_at))

    async def get_user(self, name: str) -> UserRow | None:
        rows = await self._rows(f"SELECT {_USER_COLS} FROM users WHERE name = ?", name)
        return UserRow(*rows[0]) if rows else None

    async def list_users(self, *, limit: int | None = None, after: str = "") -> list[UserRow]:
        rows = await self._rows(
            f"SELECT {_USER_COLS} FROM users WHERE name > ? ORDER BY name LIMIT ?",
            after, -1 if limit is None else limit)
        return [UserRow(*r) for r in rows]

    async def set_role(self, name: str, role: str) -> UserRow | None:
        if await self._change("UPDATE users SET role = ? WHERE name = ?", role, name) != 1:
            return None
        user = await self.get_user(name)
        self.listener.user_changed(name, user)
        return user

    async def set_password(self, name: str, password_hash: str) -> bool:
        if await self._change(
                "UPDATE users SET password_hash = ? WHERE name = ?", password_hash, name) != 1:
            return False
        # The view learns the new password's tag: sessions opened with the old one end.
        self.listener.user_changed(name, await self.get_user(name))
        return True

    async def delete_user(self, name: str) -> bool:
        """Deletes the user's keys and refresh tokens with it (foreign keys cascade)."""
        if await self._change("DELETE FROM users WHERE name = ?", name) != 1:
            return False
        self.listener.user_changed(name, None)
        return True

    # -- API keys ------------------------------------------------------------------------

    async def insert_key(self, key: KeyRow) -> bool:
        try:
            await self._insert_key(key)
        except aiosqlite.IntegrityError:  # the owner is gone (foreign key)
            return False
        self.listener.key_changed(key.id, key)
        return True

    async def _insert_key(self, k: KeyRow) -> None:
        await self.db.execute(
            f"INSERT INTO api_keys ({_KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (k.id, k.user, k.label, k.role, k.secret_hash, k.created_at, k.expires_at,
             k.revoked_at, k.uid))

    async def get_key(self, key_id: str) -> KeyRow | None:
        rows = await self._rows(f"SELECT {_KEY_COLS} FROM api_keys WHERE id = ?", key_id)
        return KeyRow(*rows[0]) if rows else None

    async def list_keys(self, *, user: str | None = None, limit: int | None = None,
                        after: str = "") -> list[KeyRow]:
        where, args = ("AND user = ?", [user]) if user is not None else ("", [])
        rows = await self._rows(
            f"SELECT {_KEY_COLS} FROM api_keys WHERE id > ? {where} ORDER BY id LIMIT ?",
            after, *args, -1 if limit is None else limit)
        return [KeyRow(*r) for r in rows]

    async def revoke_key(self, key_id: str, now: float) -> bool:
        if await self._change(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                now, key_id) != 1:
            return False
        self.listener.key_changed(key_id, await self.get_key(key_id))
        return True

    # -- sessions --------------------------------------------------------------------------

    async def insert_refresh(self, r: RefreshRow) -> None:
        await self.db.execute(
            f"INSERT INTO refresh_tokens ({_REFRESH_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.session, r.user, r.uid, r.secret_hash, r.expires_at, r.used_at))

    async def get_refresh(self, token_id: str) -> RefreshRow | None:
        rows = await self._rows(
            f"SELECT {_REFRESH_COLS} FROM refresh_tokens WHERE id = ?", token_id)
        return RefreshRow(*rows[0]) if rows else None

    async def use_refresh(self, token_id: str, now: float) -> bool:
        """Mark a refresh token used; False if it already was (a replay)."""
        return await self._change(
            "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL",
            now, token_id) == 1

    async def revoke_session(self, session: str, expires_at: float) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO revoked_sessions (session, expires_at) VALUES (?, ?)",
            (session, expires_at))
        await self.db.execute("DELETE FROM refresh_tokens WHERE session = ?", (session,))
        self.listener.session_revoked(session, expires_at)

    async def revoked_sessions(self, now: float) -> dict[str, float]:
        rows = await self._rows(
            "SELECT session, expires_at FROM revoked_sessions WHERE expires_at > ?", now)
        return {str(session): float(until) for session, until in rows}

    async def purge_expired(self, now: float | None = None) -> None:
        """Forget what can no longer matter: expired revocations and refresh tokens."""
        now = time.time() if now is None else now
        await self.db.execute("DELETE FROM revoked_sessions WHERE expires_at <= ?", (now,))
        await self.db.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))
