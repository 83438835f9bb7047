"""What the gateway's auth store keeps, and the interface its two implementations share.

``QUANTOPS_GATEWAY_AUTH_STORE`` picks one:

- ``sqlite`` (``store_sqlite.SqliteAuthStore``): aiosqlite in ``<data_dir>/gateway/auth.db``,
  for one gateway process (``quantops up``).
- ``kv`` (``store_kv.KvAuthStore``): one JetStream KV bucket shared by every gateway replica
  (the Helm chart), each replica following it with a watch.

Either way secrets are never stored: only argon2id hashes of API key secrets and passwords,
SHA-256 of refresh tokens.

The authenticator checks every request against an in-memory view (``authenticator.LiveView``).
The store keeps that view current: ``follow`` hands it every current user, key and revoked
session, then every committed change, whoever made it (this process, or with ``kv`` another
replica), in commit order. Callers never update the view themselves, so a local write and a
remote one take the same path and cannot overtake each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    uid: str  # this incarnation of the name: a re-created user inherits no token or key
    role: str
    password_hash: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    user: str
    label: str
    role: str | None  # a cap below the owner's role, or None: the owner's role
    secret_hash: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    # The owner's uid when the key was made; "" for keys from before it was recorded (SQLite
    # deletes a user's keys with the user, so those cannot outlive their owner anyway).
    uid: str = ""


@dataclass(frozen=True, slots=True)
class RefreshRow:
    id: str
    session: str
    user: str
    uid: str
    secret_hash: str
    expires_at: float
    used_at: float | None


class ChangeListener(Protocol):
    """Told about every committed change, in commit order (the authenticator's live view)."""

    def user_changed(self, name: str, user: UserRow | None) -> None:
        """``user`` is the new row, or None when the user was deleted."""

    def key_changed(self, key_id: str, key: KeyRow | None) -> None:
        """``key`` is the new row (perhaps revoked), or None when it was deleted."""

    def session_revoked(self, session: str, until: float) -> None:
        """The session's tokens are refused until ``until`` (wall clock)."""


class AuthStore(Protocol):
    """Users, API keys, refresh tokens and revoked sessions.

    Writes that can race are conditional: ``insert_*`` and ``create_first_admin`` succeed only
    for a name or id nobody has, ``use_refresh`` and ``revoke_key`` only once, whatever the
    number of gateway processes.
    """

    async def follow(self, listener: ChangeListener) -> None:
        """Tell ``listener`` the current users, keys and revoked sessions, then every change."""

    def staleness_s(self) -> float:
        """How old, at most, the followed view may be: every change committed more than this
        long ago has reached the listener (0 when the store is this process's own)."""

    async def close(self) -> None: ...

    async def create_first_admin(self, user: UserRow, key: KeyRow) -> bool:
        """Create ``user`` and ``key`` if there is no user yet; True for the one caller that
        did (``key`` works even when another process won with the same key id)."""

    async def insert_user(self, user: UserRow) -> bool:
        """False when the name is taken."""

    async def get_user(self, name: str) -> UserRow | None: ...

    async def list_users(self, *, limit: int | None = None, after: str = "") -> list[UserRow]:
        """By name, those after ``after``."""

    async def set_role(self, name: str, role: str) -> UserRow | None:
        """The updated user, or None if there is none of that name."""

    async def set_password(self, name: str, password_hash: str) -> bool: ...

    async def delete_user(self, name: str) -> bool:
        """Delete the user with its keys and refresh tokens."""

    async def insert_key(self, key: KeyRow) -> bool:
        """False when the owner does not exist (any more)."""

    async def get_key(self, key_id: str) -> KeyRow | None: ...

    async def list_keys(self, *, user: str | None = None, limit: int | None = None,
                        after: str = "") -> list[KeyRow]:
        """By id, those after ``after``, revoked ones included."""

    async def revoke_key(self, key_id: str, now: float) -> bool:
        """False when there is no such key or it was revoked already."""

    async def insert_refresh(self, r: RefreshRow) -> None: ...

    async def get_refresh(self, token_id: str) -> RefreshRow | None: ...

    async def use_refresh(self, token_id: str, now: float) -> bool:
        """Mark a refresh token used; False if it already was (a replay)."""

    async def revoke_session(self, session: str, expires_at: float) -> None:
        """Refuse the session's access tokens until ``expires_at``; delete its refresh tokens."""

    async def revoked_sessions(self, now: float) -> dict[str, float]:
        """Sessions revoked and not yet expired: session -> until."""

    async def purge_expired(self, now: float | None = None) -> None:
        """Forget what can no longer matter: expired revocations and refresh tokens."""
