"""Users: admin only."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from services.gateway.routes.auth import SMALL_BODY, auth_of
from services.gateway.routes.conventions import ADMIN, Cursor, Limit
from shared.contracts.auth import PasswordChange, User, UserCreate, UserList, UserUpdate


@post("/v1/users", opt=ADMIN, tags=["users"], request_max_body_size=SMALL_BODY,
      summary="Create a user with a role and, optionally, a password")
async def create_user(request: Request[Any, Any, Any], data: JSONBody[UserCreate]) -> User:
    return await auth_of(request).accounts.create_user(data)


@get("/v1/users", opt=ADMIN, tags=["users"], summary="Users, by name")
async def list_users(request: Request[Any, Any, Any], limit: Limit = 100,
                     cursor: Cursor = "") -> UserList:
    return await auth_of(request).accounts.list_users(limit=limit, cursor=cursor or None)


@get("/v1/users/{name:str}", opt=ADMIN, tags=["users"], summary="One user")
async def get_user(request: Request[Any, Any, Any], name: FromPath[str]) -> User:
    return await auth_of(request).accounts.get_user(name)


@patch("/v1/users/{name:str}", opt=ADMIN, tags=["users"], request_max_body_size=SMALL_BODY,
       summary="Change a user's role (takes effect on the next request)")
async def update_user(request: Request[Any, Any, Any], name: FromPath[str],
                      data: JSONBody[UserUpdate]) -> User:
    return await auth_of(request).accounts.set_role(name, data.role)


@delete("/v1/users/{name:str}", opt=ADMIN, tags=["users"],
        summary="Delete a user with its keys and sessions")
async def delete_user(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await auth_of(request).accounts.delete_user(name)


@put("/v1/users/{name:str}/password", opt=ADMIN, tags=["users"], status_code=204,
     request_max_body_size=SMALL_BODY, summary="Set a user's password")
async def set_password(request: Request[Any, Any, Any], name: FromPath[str],
                       data: JSONBody[PasswordChange]) -> None:
    await auth_of(request).accounts.set_password(name, data, own=False)


ROUTES = [create_user, list_users, get_user, update_user, delete_user, set_password]
