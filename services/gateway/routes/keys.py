"""API keys: anyone manages their own; an admin anyone's. The key itself is shown once."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody, Parameter

from services.gateway.auth.guard import principal_of
from services.gateway.routes.auth import SMALL_BODY, auth_of
from services.gateway.routes.conventions import VIEWER, Cursor, Limit
from shared.contracts.auth import KeyCreate, KeyCreated, KeyList

UserFilter = Annotated[str | None, Parameter(max_length=64,
                                             description="admin: only this user's keys")]


@post("/v1/keys", opt=VIEWER, tags=["keys"], request_max_body_size=SMALL_BODY,
      summary="Create an API key; the response is the only time the key is shown")
async def create_key(request: Request[Any, Any, Any], data: JSONBody[KeyCreate]) -> KeyCreated:
    return await auth_of(request).accounts.create_key(principal_of(request), data)


@get("/v1/keys", opt=VIEWER, tags=["keys"], summary="API keys (never the secret)")
async def list_keys(request: Request[Any, Any, Any], user: UserFilter = None, limit: Limit = 100,
                    cursor: Cursor = "") -> KeyList:
    return await auth_of(request).accounts.list_keys(principal_of(request), user=user,
                                                     limit=limit, cursor=cursor or None)


@delete("/v1/keys/{key_id:str}", opt=VIEWER, tags=["keys"],
        summary="Revoke an API key (effective on the next request)")
async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
    await auth_of(request).accounts.revoke_key(principal_of(request), key_id)


ROUTES = [create_key, list_keys, revoke_key]
