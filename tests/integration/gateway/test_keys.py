"""API keys: shown once, stored hashed, revocable at once, owned, scoped; live role changes."""

from __future__ import annotations

import sqlite3

import msgspec
import nats

from shared.subjects import Bucket
from tests.integration.gateway.support import Gateway, make_user_key
from tests.support import eventually


def _stored_bytes(gw: Gateway) -> bytes:
    """Everything the store keeps on disk: the SQLite database (write-ahead log included), or
    the JetStream files of the nats-server (where the KV bucket lives)."""
    root = gw.data_dir / "gateway" if gw.store == "sqlite" else gw.nats_dir
    assert root is not None
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
                    and (gw.store != "sqlite" or p.name.startswith("auth.db")))


async def _stored_hash(gw: Gateway, key_id: str) -> str:
    if gw.store == "sqlite":
        with sqlite3.connect(gw.data_dir / "gateway" / "auth.db") as db:
            (stored,) = db.execute("SELECT secret_hash FROM api_keys WHERE id = ?",
                                   (key_id,)).fetchone()
        return str(stored)
    nc = await nats.connect(gw.nats_url)
    try:
        entry = await (await nc.jetstream().key_value(Bucket.AUTH)).get(f"keys.{key_id}")
    finally:
        await nc.close()
    return str(msgspec.json.decode(entry.value or b"{}")["secret_hash"])


async def _on_disk(gw: Gateway, needle: bytes, timeout_s: float = 5.0) -> bool:
    """Whether ``needle`` reaches the store's files (JetStream writes them asynchronously)."""
    try:
        return await eventually(lambda: needle in _stored_bytes(gw), timeout_s=timeout_s,
                                interval_s=0.05)
    except TimeoutError:
        return False


async def test_key_is_shown_once_and_stored_as_argon2id(gateway: Gateway) -> None:
    async with gateway.client(gateway.keys["viewer"]) as http:
        created = await http.post("/v1/keys", json={"label": "laptop"})
        assert created.status_code == 201, created.text
        key, info = created.json()["key"], created.json()["info"]
        secret = key.split("_", 2)[2]
        listed = await http.get("/v1/keys")
    assert listed.status_code == 200
    assert info["id"] in listed.text and info["label"] == "laptop"
    assert secret not in listed.text and "key" not in listed.json()["items"][0]
    stored = await _stored_hash(gateway, info["id"])
    assert stored.startswith("$argon2id$")
    # The hash is on disk (so the files looked at are the right ones), the secret is not.
    assert await _on_disk(gateway, stored.encode())
    assert secret.encode() not in _stored_bytes(gateway)
    async with gateway.client() as http:  # both header forms work
        assert (await http.get("/v1/me", headers={"X-API-Key": key})).json()["name"] == (
            "the-viewer")
        me = await http.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json() == {"name": "the-viewer", "role": "viewer", "via": "api_key",
                         "key_id": info["id"]}


async def test_revocation_applies_to_the_next_request_even_when_cached(gateway: Gateway) -> None:
    key = await make_user_key(gateway, "revokee", "viewer")
    async with gateway.client(key) as http:
        assert (await http.get("/v1/me")).status_code == 200  # verified, now cached
        key_id = (await http.get("/v1/me")).json()["key_id"]
        assert (await http.delete(f"/v1/keys/{key_id}")).status_code == 204
        r = await http.get("/v1/me")
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_keys_are_owned(gateway: Gateway) -> None:
    other = await make_user_key(gateway, "owner-b", "viewer")
    async with gateway.client(other) as http:
        other_id = (await http.get("/v1/me")).json()["key_id"]
    async with gateway.client(gateway.keys["operator"]) as http:
        assert (await http.post("/v1/keys", json={"user": "owner-b"})).status_code == 403
        assert (await http.get("/v1/keys", params={"user": "owner-b"})).status_code == 403
        assert (await http.delete(f"/v1/keys/{other_id}")).status_code == 404
        mine = (await http.get("/v1/keys")).json()["items"]
    assert {k["user"] for k in mine} == {"the-operator"}
    async with gateway.client(gateway.admin_key) as http:
        listed = (await http.get("/v1/keys", params={"user": "owner-b"})).json()["items"]
        assert [k["id"] for k in listed] == [other_id]
        assert (await http.delete(f"/v1/keys/{other_id}")).status_code == 204
    async with gateway.client(other) as http:
        assert (await http.get("/v1/me")).status_code == 401


async def test_a_scoped_key_cannot_mint_a_stronger_one(gateway: Gateway) -> None:
    async with gateway.client(gateway.admin_key) as http:
        r = await http.post("/v1/keys", json={"role": "viewer", "label": "read-only"})
        assert r.status_code == 201, r.text
        scoped = r.json()["key"]
    async with gateway.client(scoped) as http:
        assert (await http.get("/v1/me")).json()["role"] == "viewer"
        assert (await http.get("/v1/users")).status_code == 403
        assert (await http.post("/v1/keys", json={"role": "admin"})).status_code == 400
        minted = (await http.post("/v1/keys", json={})).json()
    assert minted["info"]["role"] == "viewer"


async def test_role_change_and_deletion_apply_at_once(gateway: Gateway) -> None:
    key = await make_user_key(gateway, "mover", "viewer")
    async with gateway.client(key) as http, gateway.client(gateway.admin_key) as admin:
        assert (await http.get("/v1/users")).status_code == 403
        assert (await admin.patch("/v1/users/mover", json={"role": "admin"})).status_code == 200
        assert (await http.get("/v1/users")).status_code == 200
        assert (await admin.delete("/v1/users/mover")).status_code == 204
        assert (await http.get("/v1/me")).status_code == 401
        assert (await admin.get("/v1/users/mover")).status_code == 404


async def test_users_admin_surface(gateway: Gateway) -> None:
    async with gateway.client(gateway.admin_key) as http:
        r = await http.post("/v1/users", json={"name": "carol", "role": "operator",
                                               "password": "a long enough password"})
        assert r.status_code == 201 and r.json()["has_password"] is True
        assert (await http.post("/v1/users", json={"name": "carol", "role": "viewer"})
                ).status_code == 409
        page = (await http.get("/v1/users", params={"limit": 1})).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = (await http.get("/v1/users", params={"cursor": page["next_cursor"]})).json()
        assert page["items"][0]["name"] not in {u["name"] for u in rest["items"]}


async def test_the_last_admin_stays(start_gateway: object) -> None:
    async with start_gateway() as gw, gw.client(gw.admin_key) as http:  # type: ignore[operator]
        r = await http.patch("/v1/users/admin", json={"role": "viewer"})
        assert r.status_code == 409, r.text
        assert (await http.delete("/v1/users/admin")).status_code == 409
