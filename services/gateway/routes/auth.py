"""Sessions and the caller itself: login, refresh, logout, ``/v1/me``."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post, put
from litestar.params import JSONBody

from services.gateway.auth.guard import principal_of
from services.gateway.auth.runtime import Auth
from services.gateway.forward import bus_of
from services.gateway.routes.conventions import PUBLIC, VIEWER
from shared import bustokens
from shared.contracts.auth import (
    BusToken,
    LoginRequest,
    Me,
    PasswordChange,
    RefreshRequest,
    TokenPair,
)
from shared.errors import NotFound

#: Auth bodies are a few hundred bytes; nobody needs the app's upload-sized limit here.
SMALL_BODY = 64 * 1024


def auth_of(request: Request[Any, Any, Any]) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


@post("/v1/auth/login", opt=PUBLIC, tags=["auth"], status_code=200,
      request_max_body_size=SMALL_BODY, summary="Password login: an access and a refresh token")
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginRequest]) -> TokenPair:
    return await auth_of(request).sessions.login(data.username, data.password)


@post("/v1/auth/refresh", opt=PUBLIC, tags=["auth"], status_code=200,
      request_max_body_size=SMALL_BODY,
      summary="New token pair; the refresh token presented is used up (rotation)")
async def refresh(request: Request[Any, Any, Any], data: JSONBody[RefreshRequest]) -> TokenPair:
    return await auth_of(request).sessions.refresh(data.refresh_token)


@post("/v1/auth/logout", opt=VIEWER, tags=["auth"], status_code=204,
      request_max_body_size=SMALL_BODY,
      summary="End this login session: its access and refresh tokens stop working")
async def logout(request: Request[Any, Any, Any]) -> None:
    await auth_of(request).sessions.logout(principal_of(request))


@get("/v1/me", opt=VIEWER, tags=["auth"], summary="Who the caller is")
async def me(request: Request[Any, Any, Any]) -> Me:
    p = principal_of(request)
    return Me(name=p.name, role=p.role, via=p.via, key_id=p.key_id or None)  # type: ignore[arg-type]


@put("/v1/me/password", opt=VIEWER, tags=["auth"], status_code=204,
     request_max_body_size=SMALL_BODY,
     summary="Set one's own password (current_password required once one is set)")
async def set_my_password(request: Request[Any, Any, Any], data: JSONBody[PasswordChange]) -> None:
    p = principal_of(request)
    await auth_of(request).accounts.set_password(p.name, data, own=True, actor=p)


@post("/v1/auth/bus-token", opt=VIEWER, tags=["auth"], status_code=200,
      summary="A short-lived bus token to call operations over NATS directly (docs/security.md)")
async def bus_token(request: Request[Any, Any, Any]) -> BusToken:
    p = principal_of(request)
    token = bus_of(request).token_for(p.name, p.role)
    if not token:
        raise NotFound("this deployment runs NATS without authorization: no bus key, no "
                       "tokens (and none needed)", details={"reason": "no_bus_key"})
    return BusToken(token=token, principal=p.name, role=p.role,  # type: ignore[arg-type]
                    expires_in=int(bustokens.DEFAULT_TTL_S / 2))


ROUTES = [login, refresh, logout, me, set_my_password, bus_token]
