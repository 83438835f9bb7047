"""The Litestar application: route modules, the role guard, error mapping, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute

from services.gateway.auth.roles import PUBLIC, ROUTE_ROLES
from services.gateway.auth.runtime import Auth
from services.gateway.problems import EXCEPTION_HANDLERS, PROBLEM_JSON, Problem
from services.gateway.routes import (
    auth,
    dashboard,
    datasets,
    health,
    keys,
    models,
    quant,
    specs,
    state,
    tasks,
    users,
)
from shared import __version__
from shared.bus import Bus
from shared.settings import Settings

ROUTE_MODULES = (health, auth, users, keys, state, models, tasks, specs, dashboard,
                 datasets, quant)
#: Either header works on every route that is not public.
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


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


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_JSON,
                        generate_examples=False)


#: What the guard may answer, by declared role, for the OpenAPI document.
_GUARD_RESPONSES = {400: _problem("Invalid request: bad JSON, wrong types, unknown fields"),
                    429: _problem("Rate limited; see Retry-After")}
_AUTH_RESPONSES = {401: _problem("Missing, invalid, expired or revoked credentials"),
                   403: _problem("The caller's role is too weak"), **_GUARD_RESPONSES}


def _declare_security(handlers: list[BaseRouteHandler]) -> None:
    """Document what the guard does to each operation: credentials needed, 401/403/429."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler):
            continue
        public = handler.opt.get("role") == PUBLIC
        if not public:
            handler.security = SECURITY
        extra = _GUARD_RESPONSES if public else _AUTH_RESPONSES
        handler.responses = {**extra, **(handler.responses or {})}


def create_app(settings: Settings, bus: Bus, auth: Auth) -> Litestar:
    """The app; raises ``RouteRoleError`` if any route lacks a role."""
    handlers = [r for m in ROUTE_MODULES for r in m.ROUTES]
    _declare_security(handlers)
    config = AppConfig(
        route_handlers=handlers,
        guards=[auth.guard],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        state=State({"bus": bus, "settings": settings, "auth": auth}),
        request_max_body_size=settings.gateway.max_body_bytes,
        openapi_config=_openapi(),
        debug=False,
    )
    app = Litestar.from_config(config)
    check_route_roles(app)
    return app
