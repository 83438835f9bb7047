"""Every route declares a role, and the guard enforces exactly that role.

The matrix walks the WHOLE route table of the running app (Litestar's own routes included)
with no credentials and with a key of each role: a route that needs more than the caller has
answers exactly 401 (no credentials) or 403 (too weak a role); every other combination must
get past the guard (anything but 401/403: a forwarded route with no service behind it says 503,
a placeholder id 404, an empty body 400).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from litestar import Litestar, get

from services.gateway.app import RouteRoleError, check_route_roles, route_handlers
from services.gateway.auth.roles import RANK
from shared.bus import flush
from tests.integration.gateway.support import Gateway

# Values that route for each path-parameter type Litestar knows.
PLACEHOLDERS = {"str": "authz-probe", "int": "1", "float": "1.5", "decimal": "1.5",
                "uuid": "00000000-0000-4000-8000-000000000000", "path": "authz-probe/x",
                "date": "2024-01-02", "datetime": "2024-01-02T03:04:05", "time": "03:04:05",
                "timedelta": "60"}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
WITH_BODY = {"POST", "PUT", "PATCH"}


def concrete(path: str) -> str:
    return _PARAM.sub(lambda m: PLACEHOLDERS.get(m[2] or "str", "authz-probe"), path)


def route_table(gw: Gateway) -> list[tuple[str, str, str]]:
    """``(method, concrete path, declared role)`` of every route the gateway serves."""
    assert gw.service.app is not None
    out = set()
    for path, handler in route_handlers(gw.service.app):
        for method in getattr(handler, "http_methods", ()):
            out.add((method, concrete(path), handler.opt["role"]))
    return sorted(out)


def test_every_route_of_the_app_declares_a_role(gateway: Gateway) -> None:
    table = route_table(gateway)
    assert len(table) > 20
    assert {role for _, _, role in table} <= set(RANK)
    paths = {p for _, p, _ in table}
    assert {"/v1/auth/login", "/v1/users", "/v1/keys", "/v1/me", "/readyz"} <= paths


def test_a_route_without_a_role_stops_the_app() -> None:
    @get("/v1/forgotten", sync_to_thread=False)
    def forgotten() -> str:
        return "x"

    @get("/v1/typo", opt={"role": "superuser"}, sync_to_thread=False)
    def typo() -> str:
        return "x"

    with pytest.raises(RouteRoleError) as e:
        check_route_roles(Litestar(route_handlers=[forgotten, typo]))
    assert "GET /v1/forgotten" in str(e.value) and "GET /v1/typo" in str(e.value)


async def _status(http: httpx.AsyncClient, method: str, path: str, key: str | None) -> int | None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    kwargs: dict[str, Any] = {"json": {}} if method in WITH_BODY else {}
    try:
        # Streamed, and closed after the status line: an SSE route must not hold the test.
        async with http.stream(method, path, headers=headers, timeout=5, **kwargs) as r:
            return r.status_code
    except httpx.ReadTimeout:
        return None  # no response head in time: the guard let it through to a slow handler


def expected(declared: str, caller: str | None) -> str:
    if declared == "public":
        return "through"
    if caller is None:
        return "401"
    return "through" if RANK[caller] >= RANK[declared] else "403"


async def test_role_matrix_over_the_whole_route_table(gateway: Gateway) -> None:
    callers: dict[str | None, str | None] = {None: None, **{r: gateway.keys[r] for r in
                                                           ("viewer", "operator", "admin")}}
    wrong = []
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for method, path, declared in route_table(gateway):
            for caller, key in callers.items():
                status = await _status(http, method, path, key)
                want = expected(declared, caller)
                got = str(status) if status in (401, 403) else "through"
                if got != want:
                    wrong.append(f"{method} {path} [{declared}] as {caller}: {status}, want {want}")
    assert not wrong, "\n".join(wrong)


async def test_principal_reaches_services_in_nats_headers(gateway: Gateway, unique: str) -> None:
    """The guard's principal is what ``forward`` sends as Quantops-Principal/-Role."""
    import asyncio

    import nats

    nc = await nats.connect(gateway.nats_url)
    seen: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def record(msg: Any) -> None:
        if not seen.done():
            seen.set_result(dict(msg.headers or {}))
        await msg.respond(b"{}")

    await nc.subscribe(f"probe.{unique}", cb=record)
    await flush(nc)
    try:
        async with gateway.client(gateway.keys["operator"]) as http:
            r = await http.get(f"/v1/probe/probe.{unique}")
        assert r.status_code == 200, r.text
        headers = await asyncio.wait_for(seen, 5)
    finally:
        await nc.close()
    assert headers["Quantops-Principal"] == "the-operator"
    assert headers["Quantops-Role"] == "operator"



async def test_openapi_marks_what_needs_credentials(gateway: Gateway) -> None:
    async with gateway.client() as http:
        doc = (await http.get("/schema/openapi.json")).json()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert "security" not in doc["paths"]["/v1/auth/login"]["post"]
    users = doc["paths"]["/v1/users"]["get"]
    assert users["security"] == [{"bearer": []}, {"apiKey": []}]
    assert {"400", "401", "403", "429"} <= set(users["responses"])
    assert "application/problem+json" in users["responses"]["400"]["content"]
    assert "application/problem+json" in users["responses"]["401"]["content"]
    assert "429" in doc["paths"]["/healthz"]["get"]["responses"]
