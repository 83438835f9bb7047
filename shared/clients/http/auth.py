"""``client.auth``, ``client.keys``, ``client.users``: sessions, API keys and users.

    client.auth.login("alice", "a long passphrase")   # the client now sends the access token
    key = client.keys.create(label="ci", role="viewer").key      # shown once: keep it
    client.keys.revoke(key_id)
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any
from urllib.parse import quote

from shared.clients.http._calls import TT, Call, Paged, Resource, op, pages
from shared.contracts import auth as c


class Auth(Resource[TT]):
    @op
    def login(self, username: str, password: str) -> Generator[Call[Any], Any, c.TokenPair]:
        """Password login; the client then authenticates with the access token and renews it
        with the refresh token when it expires."""
        pair: c.TokenPair = yield Call("POST", "/v1/auth/login", c.TokenPair,
                                       json=c.LoginRequest(username=username, password=password))
        self._t.remember(pair)
        return pair

    @op
    def refresh(self) -> Generator[Call[Any], Any, c.TokenPair]:
        """A new token pair now (the client also does this by itself on a 401)."""
        pair: c.TokenPair = yield self._t.refresh_call()
        self._t.remember(pair)
        return pair

    @op
    def logout(self) -> Generator[Call[Any], Any, None]:
        """End the login session: its access and refresh tokens stop working."""
        yield Call("POST", "/v1/auth/logout", None)
        self._t.credentials.access_token = self._t.credentials.refresh_token = ""

    @op
    def me(self) -> Call[c.Me]:
        return Call("GET", "/v1/me", c.Me)

    @op
    def set_password(self, new_password: str, *, current_password: str | None = None
                     ) -> Call[None]:
        return Call("PUT", "/v1/me/password", None, json=c.PasswordChange(
            new_password=new_password, current_password=current_password))

    @op
    def stream_token(self) -> Call[c.StreamToken]:
        """A short-lived token for ``?access_token=`` on event-stream routes (a browser's
        EventSource cannot send an Authorization header)."""
        return Call("POST", "/v1/auth/stream-token", c.StreamToken)

    @op
    def bus_token(self) -> Call[c.BusToken]:
        """A short-lived bus token to call operations over NATS directly as the ``client`` NATS
        user: set it as ``Bus.caller_token`` (or send it in the ``header`` it names), and ask
        again before ``expires_in`` seconds have passed (docs/security.md)."""
        return Call("POST", "/v1/auth/bus-token", c.BusToken)


class Keys(Resource[TT]):
    @op
    def create(self, *, label: str = "", role: c.RoleName | None = None,
               expires_in_s: int | None = None, user: str | None = None) -> Call[c.KeyCreated]:
        """A new API key (``.key``; this is the only time it is shown), at most the owner's role."""
        return Call("POST", "/v1/keys", c.KeyCreated, json=c.KeyCreate(
            label=label, role=role, expires_in_s=expires_in_s, user=user))

    @op
    def page(self, *, user: str | None = None, limit: int = 100, cursor: str = ""
             ) -> Call[c.KeyList]:
        return Call("GET", "/v1/keys", c.KeyList,
                    params={"user": user, "limit": limit, "cursor": cursor})

    @pages
    def iter(self, *, user: str | None = None) -> Paged[c.KeyList, c.KeyInfo]:
        return Paged(lambda cursor: Keys.page.plan(self, user=user, cursor=cursor),
                     lambda page: page.items)

    @op
    def revoke(self, key_id: str) -> Call[None]:
        """Revoke a key by its id (the part after ``qo_``); effective on the next request."""
        return Call("DELETE", f"/v1/keys/{quote(key_id, safe='')}", None)


class Users(Resource[TT]):
    @op
    def create(self, name: str, role: c.RoleName, *, password: str | None = None
               ) -> Call[c.User]:
        return Call("POST", "/v1/users", c.User,
                    json=c.UserCreate(name=name, role=role, password=password))

    @op
    def page(self, *, limit: int = 100, cursor: str = "") -> Call[c.UserList]:
        return Call("GET", "/v1/users", c.UserList, params={"limit": limit, "cursor": cursor})

    @pages
    def iter(self) -> Paged[c.UserList, c.User]:
        return Paged(lambda cursor: Users.page.plan(self, cursor=cursor), lambda p: p.items)

    @op
    def get(self, name: str) -> Call[c.User]:
        return Call("GET", f"/v1/users/{quote(name, safe='')}", c.User)

    @op
    def set_role(self, name: str, role: c.RoleName) -> Call[c.User]:
        return Call("PATCH", f"/v1/users/{quote(name, safe='')}", c.User,
                    json=c.UserUpdate(role=role))

    @op
    def set_password(self, name: str, new_password: str) -> Call[None]:
        return Call("PUT", f"/v1/users/{quote(name, safe='')}/password", None,
                    json=c.PasswordChange(new_password=new_password))

    @op
    def delete(self, name: str) -> Call[None]:
        return Call("DELETE", f"/v1/users/{quote(name, safe='')}", None)
