"""JWT sessions: login, refresh rotation (a replay revokes the session), logout; every bad
token is a 401 problem, never a 500."""

from __future__ import annotations

import time

import httpx
import jwt

from tests.integration.gateway.support import Gateway

PASSWORD = "correct horse battery staple"


async def _user_with_password(gw: Gateway, name: str) -> None:
    async with gw.client(gw.admin_key) as http:
        r = await http.post("/v1/users", json={"name": name, "role": "operator",
                                               "password": PASSWORD})
        assert r.status_code == 201, r.text


async def _login(http: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/v1/auth/login", json={"username": name, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_refresh_rotation_and_replay(gateway: Gateway) -> None:
    await _user_with_password(gateway, "dora")
    async with gateway.client() as http:
        pair = (await _login(http, "dora")).json()
        assert pair["token_type"] == "Bearer" and pair["expires_in"] > 0
        me = await http.get("/v1/me", headers=_bearer(pair["access_token"]))
        assert me.json() == {"name": "dora", "role": "operator", "via": "jwt", "key_id": None}

        r = await http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != pair["refresh_token"]
        assert (await http.get("/v1/me", headers=_bearer(second["access_token"]))
                ).status_code == 200

        # The used refresh token again: someone copied it. The session ends for everyone.
        replay = await http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert replay.status_code == 401
        assert (await http.get("/v1/me", headers=_bearer(second["access_token"]))
                ).status_code == 401
        assert (await http.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
                ).status_code == 401


async def test_logout_revokes_access_and_refresh(gateway: Gateway) -> None:
    await _user_with_password(gateway, "eve")
    async with gateway.client() as http:
        pair = (await _login(http, "eve")).json()
        other = (await _login(http, "eve")).json()  # a second session, on another device
        headers = _bearer(pair["access_token"])
        assert (await http.post("/v1/auth/logout", headers=headers)).status_code == 204
        assert (await http.get("/v1/me", headers=headers)).status_code == 401
        assert (await http.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
                ).status_code == 401
        assert (await http.get("/v1/me", headers=_bearer(other["access_token"]))
                ).status_code == 200


async def test_wrong_password_and_unknown_user_look_the_same(gateway: Gateway) -> None:
    await _user_with_password(gateway, "fay")
    async with gateway.client() as http:
        wrong = await _login(http, "fay", "not the password")
        unknown = await _login(http, "nobody-at-all", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_first_admin_has_no_password_until_set(gateway: Gateway) -> None:
    async with gateway.client() as http:
        assert (await _login(http, "admin", "")).status_code == 401
    async with gateway.client(gateway.admin_key) as http:
        r = await http.put("/v1/me/password", json={"new_password": PASSWORD})
        assert r.status_code == 204, r.text
        # Once set, changing it needs the current one.
        assert (await http.put("/v1/me/password", json={"new_password": "x" * 12})
                ).status_code == 400
        assert (await http.put("/v1/me/password", json={"new_password": "x" * 12,
                                                        "current_password": "wrong"})
                ).status_code == 401
    async with gateway.client() as http:
        assert (await _login(http, "admin")).status_code == 200


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": "quantops", "typ": "access", "sub": "admin", "uid": "x", "sid": "s",
            "jti": "j", "iat": now - 100, "exp": now + 100, **over}


async def test_expired_forged_and_malformed_tokens_are_401(gateway: Gateway) -> None:
    await _user_with_password(gateway, "gus")
    async with gateway.client() as http:
        good = jwt.decode((await _login(http, "gus")).json()["access_token"],
                          options={"verify_signature": False})
        key = gateway.signing_key()
        bad_tokens = [
            jwt.encode({**good, "exp": int(time.time()) - 30}, key, algorithm="HS256"),
            jwt.encode(good, "a-different-key-of-enough-length-0123456789", algorithm="HS256"),
            jwt.encode({**good, "uid": "someone-else"}, key, algorithm="HS256"),
            jwt.encode(good, None, algorithm="none"),
            "eyJhbGciOiJIUzI1NiJ9.e30.", "qo_0000000000000000_" + "a" * 43, "garbage", "é",
        ]
        for token in bad_tokens:
            r = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}".encode()})
            assert r.status_code == 401, (token, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["www-authenticate"].startswith("Bearer")
        for header in ("Basic Zm9vOmJhcg==", "Bearer", "Bearer " + "x" * 8000):
            r = await http.get("/v1/me", headers={"Authorization": header})
            assert r.status_code == 401, header
        # Far past any sane size: refused by the HTTP server itself, still not a 5xx.
        r = await http.get("/v1/me", headers={"Authorization": "Bearer " + "x" * 200_000})
        assert 400 <= r.status_code < 500
