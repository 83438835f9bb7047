"""The dashboard: a static page at ``/`` (HTML, JS and CSS under ``services/gateway/static``,
no build step; Chart.js pinned under ``static/vendor``) that asks for an API key, keeps it in
the tab's sessionStorage and calls the API with it; its icon; and the stream tokens its
EventSource feeds authenticate with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, get, head, post
from litestar.static_files import create_static_files_router

from services.gateway.auth import streamtokens
from services.gateway.auth.guard import principal_of
from services.gateway.routes.auth import SMALL_BODY, auth_of
from services.gateway.routes.conventions import PUBLIC, VIEWER
from shared.contracts.auth import StreamToken
from shared.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: The page holds a key: nothing but its own scripts, styles and API may run or be reached.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_INDEX = (STATIC_DIR / "index.html").read_bytes()
_ICON = (STATIC_DIR / "favicon.ico").read_bytes()


def page(settings: Settings) -> bytes:
    """The page with its settings filled in (a data attribute: no inline script under CSP)."""
    refresh_s = f"{settings.gateway.dashboard_refresh_s:g}".encode()
    return _INDEX.replace(b"{{refresh_s}}", refresh_s)


@get("/", opt=PUBLIC, include_in_schema=False, media_type=MediaType.HTML)
async def index(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(page(request.app.state.settings), media_type=MediaType.HTML,
                    headers=SECURITY_HEADERS)


@head("/", opt=PUBLIC, include_in_schema=False, media_type=MediaType.HTML)
async def index_head() -> Response[None]:
    """Uptime checkers and ``curl -I`` ask with HEAD: the headers of ``GET /``, no body."""
    return Response(None, media_type=MediaType.HTML, headers=SECURITY_HEADERS)


@get("/favicon.ico", opt=PUBLIC, include_in_schema=False, media_type="image/x-icon")
async def favicon() -> Response[bytes]:
    return Response(_ICON, media_type="image/x-icon",
                    headers={"Cache-Control": "public, max-age=86400"})


static = create_static_files_router(
    "/static", directories=[STATIC_DIR], opt=dict(PUBLIC), include_in_schema=False,
    name="dashboard-static")


@post("/v1/auth/stream-token", opt=VIEWER, tags=["auth"], status_code=200,
      request_max_body_size=SMALL_BODY,
      summary="A token for ?access_token= on event-stream routes (EventSource sends no "
              "headers); valid 60 s, for the calling credential only")
async def stream_token(request: Request[Any, Any, Any]) -> StreamToken:
    token, ttl_s = streamtokens.issue(principal_of(request), auth_of(request).authn)
    return StreamToken(token=token, expires_in=ttl_s)


ROUTES = [index, index_head, favicon, static, stream_token]
