"""The Litestar application: route modules, the role guard, error mapping, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import documented
from services.gateway.auth.guard import Guard
from services.gateway.auth.roles import PUBLIC, ROUTE_ROLES
from services.gateway.auth.runtime import Auth
from services.gateway.lean import lean_middleware
from services.gateway.problems import EXCEPTION_HANDLERS
from services.gateway.routes import (
    auth,
    dashboard,
    datasets,
    health,
    keys,
    live,
    live_feed,
    models,
    quant,
    specs,
    state,
    tasks,
    users,
)
from services.gateway.streamleases import StreamLeases
from services.gateway.streams import StreamSlots
from services.gateway.strictbody import StrictRequest
from shared import __version__
from shared.bus import Bus
from shared.schema_patterns import ecma_patterns
from shared.settings import Settings

ROUTE_MODULES = (health, auth, users, keys, state, models, tasks, specs, dashboard,
                 datasets, quant, live, live_feed)
_GUARDED = frozenset({ScopeType.HTTP, ScopeType.WEBSOCKET})
#: Body limit of every route that declares none: JSON requests naming things, not carrying data.
DEFAULT_BODY_BYTES = 64 * 1024


class RouteRoleError(RuntimeError):
    """A route does not declare ``opt={"role": ...}``: the gateway refuses to start."""


def route_handlers(app: Litestar) -> Iterator[tuple[str, BaseRouteHandler]]:
    """Every ``(path, handler)`` the app serves, Litestar's own included."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                yield route.path, handler
        elif isinstance(route, WebSocketRoute | ASGIRoute):
            yield route.path, route.route_handler


def check_route_roles(app: Litestar) -> None:
    """Every route declares a known role, or the app does not start.

    Litestar adds an ``OPTIONS`` handler to each path (it only lists the allowed methods); it
    is declared public here, the one role this module assigns instead of a route author.
    """
    missing = []
    for path, handler in route_handlers(app):
        methods: set[str] = getattr(handler, "http_methods", set())
        if methods == {"OPTIONS"} and handler.handler_name == "options_handler":
            handler.opt.setdefault("role", PUBLIC)
        if handler.opt.get("role") not in ROUTE_ROLES:
            missing.append(f"{'/'.join(sorted(methods)) or 'WS'} {path}")
    if missing:
        raise RouteRoleError(
            f"routes without opt={{'role': one of {sorted(ROUTE_ROLES)}}}: {', '.join(missing)}")


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="quantops", version=__version__,
        description="Model registry, task executor and state for quant ML, over NATS. "
                    "Authenticate with `Authorization: Bearer <API key or access token>`.",
        render_plugins=[ScalarRenderPlugin()],
        # The documentation itself is public; it is what tells a caller how to authenticate.
        openapi_router=Router("/schema", route_handlers=[], include_in_schema=False,
                              opt={"role": PUBLIC}),
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer",
                                     description="API key (qo_...) or JWT access token"),
            "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
        }),
    )


def _fix_allow(app: Litestar) -> None:
    """Litestar's automatic ``OPTIONS`` answer lists the methods of the first handler
    registered for a path only (its closure keeps that early route): record every method of
    the final route, and ``_allow`` puts them in the header."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.handler_name == "options_handler":
                    handler.opt["allow"] = ", ".join(sorted(route.methods))


def allow_middleware(app: ASGIApp) -> ASGIApp:
    """Puts the methods ``_fix_allow`` recorded into an ``OPTIONS`` answer's ``Allow``."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return

        async def send_allow(message: Message) -> None:
            handler = scope.get("route_handler")
            allow = handler.opt.get("allow") if handler is not None else None
            if message["type"] == "http.response.start" and allow:
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await app(scope, receive, send_allow)

    return middleware


def guard_middleware(guard: Guard) -> Callable[[ASGIApp], ASGIApp]:
    """The role guard on every route, after routing (it reads the route's declared role) and
    before the body is read.

    Not Litestar's ``guards=``: Litestar hands each guard a fresh ``copy()`` of the route
    handler on every request, a tenth of the gateway's CPU per request (cProfile under
    ``bench.bench_gateway``). The guard only reads the handler, so it gets the handler itself.
    What it raises reaches the app's exception handlers as before (problem+json).
    """

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in _GUARDED:
                await guard(ASGIConnection(scope, receive, send), scope["route_handler"])
            await app(scope, receive, send)

        return middleware

    return factory


def _size_uploads(handlers: list[BaseRouteHandler], max_bytes: int) -> None:
    """Routes that read a whole file into memory (``opt={"body": "upload"}``) take up to the
    configured ``max_body_bytes``; streamed uploads declare their own ceiling."""
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler) and handler.opt.get("body") == "upload":
            handler.request_max_body_size = max_bytes


def create_app(settings: Settings, bus: Bus, auth: Auth) -> Litestar:
    """The app; raises ``RouteRoleError`` if any route lacks a role."""
    handlers = [r for m in ROUTE_MODULES for r in m.ROUTES]
    documented.declare(handlers)
    _size_uploads(handlers, settings.gateway.max_body_bytes)
    gw = settings.gateway
    streams = StreamSlots(gw.max_streams_per_principal, StreamLeases(
        bus.js, ttl_s=gw.stream_lease_ttl_s, replicas=settings.stream_replicas))
    config = AppConfig(
        route_handlers=handlers,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        state=State({"bus": bus, "settings": settings, "auth": auth,
                     "streams": streams}),
        on_shutdown=[streams.close],
        # A route that takes more says so itself (uploads stream; state values, tasks).
        request_max_body_size=DEFAULT_BODY_BYTES,
        request_class=StrictRequest,
        middleware=[allow_middleware, guard_middleware(auth.guard), lean_middleware],
        openapi_config=_openapi(),
        debug=False,
    )
    app = Litestar.from_config(config)
    check_route_roles(app)
    _fix_allow(app)
    # Built now (Litestar caches it) so its patterns can be published in ECMA dialect.
    ecma_patterns(app.openapi_schema)
    return app
