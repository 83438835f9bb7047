"""HTTP bodies of the gateway's own resources: sessions, users, API keys.

These are not NATS messages: the gateway serves them itself. They live in ``shared`` so the
Python client and the CLI speak the same types. Request bodies refuse unknown fields (a typo in
``role`` must not silently create a viewer).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from shared.contracts.page import Page

RoleName = Literal["viewer", "operator", "admin"]
UserName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._\-]{0,63}\Z",
                                       description="lower-case letters, digits, . _ -")]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=1024)]
Label = Annotated[str, msgspec.Meta(max_length=200)]


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of request bodies."""


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """Base of response bodies."""


class LoginRequest(Body, frozen=True):
    username: Annotated[str, msgspec.Meta(max_length=64)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class RefreshRequest(Body, frozen=True):
    refresh_token: Annotated[str, msgspec.Meta(max_length=256)]


class TokenPair(Reply, frozen=True):
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    token_type: str = "Bearer"


class UserCreate(Body, frozen=True):
    name: UserName
    role: RoleName
    password: Password | None = None


class UserUpdate(Body, frozen=True):
    role: RoleName


class PasswordChange(Body, frozen=True):
    new_password: Password
    current_password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


class User(Reply, frozen=True):
    name: str
    role: RoleName
    has_password: bool
    created_at: float


class UserList(Page[User], frozen=True):
    pass


class KeyCreate(Body, frozen=True):
    label: Label = ""
    user: UserName | None = None  # admin only: a key for someone else
    role: RoleName | None = None  # at most the owner's role; None: the owner's role
    expires_in_s: Annotated[int, msgspec.Meta(ge=60, le=10 * 365 * 24 * 3600)] | None = None


class KeyInfo(Reply, frozen=True):
    id: str
    user: str
    label: str
    role: RoleName | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    active: bool


class KeyCreated(Reply, frozen=True):
    """The only response that ever carries the key itself."""

    key: str
    info: KeyInfo


class KeyList(Page[KeyInfo], frozen=True):
    pass


class Me(Reply, frozen=True):
    name: str
    role: RoleName
    via: Literal["api_key", "jwt"]
    key_id: str | None = None


class BusToken(Reply, frozen=True):
    """A bus token (``Quantops-Auth`` header) for calling operations over NATS directly, as the
    ``client`` NATS user: the caller's principal, with this credential's role."""

    token: str
    principal: str
    role: RoleName
    expires_in: int
    header: str = "Quantops-Auth"


class StreamToken(Reply, frozen=True):
    """A short-lived credential for the ``access_token`` query parameter of event-stream
    routes only (a browser's EventSource cannot send an Authorization header). It acts for the
    credential that asked for it, and dies with it (key revoked, session ended, user deleted)."""

    token: str
    expires_in: int
    token_type: str = "stream"
