"""Users and API keys: the rules of who may create, see, change and revoke what.

Every write goes to the store, which tells the live view once it is committed (``follow``), so
a request that follows sees the change (a revoked key fails on the very next request, cached or
not), on this gateway at once and on other replicas within the store's staleness bound.
"""

from __future__ import annotations

import time
import uuid

from services.gateway.auth import credentials
from services.gateway.auth.authenticator import LiveView
from services.gateway.auth.credentials import Argon2Runner
from services.gateway.auth.roles import RANK, Principal, Role, lesser
from services.gateway.auth.store import AuthStore, KeyRow, UserRow
from shared.contracts.auth import (
    KeyCreate,
    KeyCreated,
    KeyInfo,
    KeyList,
    PasswordChange,
    User,
    UserCreate,
    UserList,
)
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated


def user_out(u: UserRow) -> User:
    return User(name=u.name, role=u.role, has_password=u.password_hash is not None,  # type: ignore[arg-type]
                created_at=u.created_at)


def key_out(k: KeyRow, now: float | None = None) -> KeyInfo:
    now = time.time() if now is None else now
    active = k.revoked_at is None and (k.expires_at is None or k.expires_at > now)
    return KeyInfo(id=k.id, user=k.user, label=k.label, role=k.role,  # type: ignore[arg-type]
                   created_at=k.created_at, expires_at=k.expires_at, revoked_at=k.revoked_at,
                   active=active)


def new_user(name: str, role: str, password_hash: str | None) -> UserRow:
    return UserRow(name=name, uid=uuid.uuid4().hex, role=role, password_hash=password_hash,
                   created_at=time.time())


class Accounts:
    """Users and API keys. ``max_keys_per_user``: active keys one user may hold (a key costs
    an argon2 hash to make and a place in every replica's live view)."""

    def __init__(self, store: AuthStore, view: LiveView, runner: Argon2Runner, *,
                 max_keys_per_user: int = 100) -> None:
        self.store = store
        self.view = view
        self.runner = runner
        self.max_keys_per_user = max_keys_per_user

    # -- users (admin) -------------------------------------------------------------------

    async def create_user(self, body: UserCreate) -> User:
        pw = (await self.runner.hash(credentials.PASSWORD_HASHER, body.password)
              if body.password is not None else None)
        user = new_user(body.name, body.role, pw)
        if not await self.store.insert_user(user):
            raise Conflict(f"user {body.name!r} exists", details={"name": body.name})
        return user_out(user)

    async def list_users(self, *, limit: int, cursor: str | None) -> UserList:
        rows = await self.store.list_users(limit=limit + 1, after=cursor or "")
        more = len(rows) > limit
        rows = rows[:limit]
        return UserList(items=[user_out(u) for u in rows],
                        next_cursor=rows[-1].name if more else "")

    async def get_user(self, name: str) -> User:
        return user_out(await self._user(name))

    async def set_role(self, name: str, role: str) -> User:
        user = await self._user(name)
        if user.role == Role.ADMIN and role != Role.ADMIN:
            self._keep_an_admin(name)
        updated = await self.store.set_role(name, role)
        if updated is None:  # deleted meanwhile
            raise NotFound(f"no user {name!r}", details={"name": name})
        return user_out(updated)

    async def delete_user(self, name: str) -> None:
        user = await self._user(name)
        if user.role == Role.ADMIN:
            self._keep_an_admin(name)
        await self.store.delete_user(name)

    async def set_password(self, name: str, body: PasswordChange, *, own: bool,
                           actor: Principal | None = None) -> None:
        """Own password: the current one is required once there is one, and the credential
        must carry the owner's full role (a capped key setting the password would log in as
        the uncapped owner). Admin: no check. Either way every session opened with the old
        password ends (``credentials.new_session``)."""
        user = await self._user(name)
        if own and actor is not None and RANK[actor.role] < RANK[user.role]:
            raise Forbidden(f"a credential capped to {actor.role!r} cannot set the password of "
                            f"a {user.role!r}", details={"role": actor.role,
                                                          "required": user.role})
        if own and user.password_hash is not None:
            if body.current_password is None:
                raise InvalidRequest("current_password is required to change a password")
            if not await self.runner.verify(credentials.PASSWORD_HASHER, user.password_hash,
                                            body.current_password):
                raise Unauthenticated("current_password is wrong")
        pw = await self.runner.hash(credentials.PASSWORD_HASHER, body.new_password)
        await self.store.set_password(name, pw)

    def _keep_an_admin(self, leaving: str) -> None:
        admins = [n for n, u in self.view.users.items() if u.role == Role.ADMIN and n != leaving]
        if not admins:
            raise Conflict("the last admin cannot be removed or demoted; make another admin first")

    async def _user(self, name: str) -> UserRow:
        user = await self.store.get_user(name)
        if user is None:
            raise NotFound(f"no user {name!r}", details={"name": name})
        return user

    # -- API keys (own, or anyone's for an admin) ----------------------------------------

    async def create_key(self, actor: Principal, body: KeyCreate) -> KeyCreated:
        owner = body.user or actor.name
        if owner != actor.name and actor.role != Role.ADMIN:
            raise Forbidden("only an admin may create keys for another user")
        user = self.view.users.get(owner)
        if user is None:
            raise NotFound(f"no user {owner!r}", details={"name": owner})
        # A key never exceeds its owner, nor (for one's own key) the credential making it:
        # a viewer-scoped key must not mint an admin key for its admin owner.
        ceiling = user.role if owner != actor.name else lesser(user.role, actor.role)
        if body.role is not None and RANK[body.role] > RANK[ceiling]:
            raise InvalidRequest(f"a key for {owner!r} can have at most role {ceiling!r}",
                                 details={"max_role": ceiling})
        cap = body.role or (ceiling if ceiling != user.role else None)
        held = sum(1 for k in self.view.keys.values() if k.user == owner)
        if held >= self.max_keys_per_user:
            raise Conflict(f"{owner!r} holds {held} API keys, the most allowed: revoke one first",
                           details={"keys": held, "max_keys": self.max_keys_per_user})
        key_id, secret, key = credentials.new_api_key()
        now = time.time()
        row = KeyRow(id=key_id, user=owner, label=body.label, role=cap,
                     secret_hash=await self.runner.hash(credentials.KEY_HASHER, secret),
                     created_at=now, revoked_at=None,
                     expires_at=now + body.expires_in_s if body.expires_in_s else None,
                     uid=user.uid)
        if not await self.store.insert_key(row):  # the owner was deleted meanwhile
            raise NotFound(f"no user {owner!r}", details={"name": owner})
        return KeyCreated(key=key, info=key_out(row, now))

    async def list_keys(self, actor: Principal, *, user: str | None, limit: int,
                        cursor: str | None) -> KeyList:
        if actor.role != Role.ADMIN:
            if user not in (None, actor.name):
                raise Forbidden("only an admin may list another user's keys")
            user = actor.name
        rows = await self.store.list_keys(user=user, limit=limit + 1, after=cursor or "")
        more = len(rows) > limit
        rows = rows[:limit]
        now = time.time()
        return KeyList(items=[key_out(k, now) for k in rows],
                       next_cursor=rows[-1].id if more else "")

    async def revoke_key(self, actor: Principal, key_id: str) -> None:
        row = await self.store.get_key(key_id)
        # Someone else's key is "not found" to a non-admin: ids are not to be probed.
        if row is None or (row.user != actor.name and actor.role != Role.ADMIN):
            raise NotFound(f"no key {key_id!r}", details={"key_id": key_id})
        # A capped key revokes only keys that can do no more than it can: not its owner's
        # full keys (a leaked viewer key must not lock the owner out).
        owner = self.view.users.get(row.user)
        reach = row.role or (owner.role if owner else Role.ADMIN)
        if RANK[reach] > RANK[actor.role]:
            raise Forbidden(f"a credential of role {actor.role!r} cannot revoke a key of role "
                            f"{reach!r}", details={"role": actor.role, "required": reach})
        await self.store.revoke_key(key_id, time.time())
