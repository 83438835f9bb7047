"""The first admin: created on the first start only, its key printed once and written 0600;
or supplied by the deployment. Also checked with a real ``quantops serve gateway`` process."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.gateway.auth.bootstrap import KEY_FILE_NAME
from shared.natsserver import EmbeddedNats, free_port
from shared.settings import SettingsError
from tests.gateway_auth import admin_headers, admin_key
from tests.integration.gateway.support import Gateway
from tests.support import eventually

Start = Callable[..., Any]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _whoami(gw: Gateway, key: str) -> dict[str, Any]:
    async with gw.client(key) as http:
        r = await http.get("/v1/me")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_first_start_creates_admin_key_once(start_gateway: Start, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_file = data_dir / "gateway" / KEY_FILE_NAME
    async with start_gateway(data_dir) as gw:
        key = key_file.read_text().strip()
        assert _mode(key_file) == 0o600
        assert _mode(data_dir / "gateway" / "jwt-secret") == 0o600
        assert _mode(data_dir / "gateway") == 0o700
        assert {_mode(p) for p in (data_dir / "gateway").glob("auth.db*")} == {0o600}
        assert gw.stdout.count(key) == 1 and str(key_file) in gw.stdout
        assert await _whoami(gw, key) == {"name": "admin", "role": "admin", "via": "api_key",
                                          "key_id": key.split("_")[1]}
    before = (key_file.stat().st_mtime_ns, key_file.read_text())
    async with start_gateway(data_dir) as gw:
        assert "qo_" not in gw.stdout and "first start" not in gw.stdout
        assert (key_file.stat().st_mtime_ns, key_file.read_text()) == before
        assert (await _whoami(gw, key))["name"] == "admin"
    assert not [p for p in key_file.parent.iterdir() if p.name.startswith(".")]


async def test_deployment_supplies_the_key(start_gateway: Start, tmp_path: Path) -> None:
    key = "qo_k8sbootstrap01_" + "S" * 43
    async with start_gateway(tmp_path / "d", QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY=key) as gw:
        assert (await _whoami(gw, key))["role"] == "admin"
        assert key not in gw.stdout
        assert not (tmp_path / "d" / "gateway" / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(("env", "var"), [
    ({"QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY": "hunter2"}, "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY"),
    ({"QUANTOPS_GATEWAY_JWT_SECRET": "short"}, "QUANTOPS_GATEWAY_JWT_SECRET"),
])
async def test_unusable_secrets_stop_the_start(start_gateway: Start, tmp_path: Path,
                                               env: dict[str, str], var: str) -> None:
    with pytest.raises(SettingsError, match=var) as e:
        async with start_gateway(tmp_path / "bad", **env):
            pass
    assert "hunter2" not in str(e.value) and "short" not in str(e.value)


async def _wait_http(url: str, headers: dict[str, str], log: Callable[[], str]) -> None:
    """Until the gateway answers (not its health subject: the session's own gateway answers
    that too, when the e2e system runs on the same nats-server)."""
    async with httpx.AsyncClient(base_url=url) as http:
        async def answers() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/v1/me", headers=headers)).status_code == 200
            return False

        try:
            await eventually(answers, timeout_s=30, interval_s=0.1, what="the gateway answers")
        except TimeoutError as e:
            raise AssertionError(log()[-2000:]) from e


async def test_real_process_prints_once_and_tests_can_read_the_key(
    spawn: Callable[..., Any], nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    data_dir, port = tmp_path / "proc-data", free_port()
    env = {"data_dir": str(data_dir), "QUANTOPS_GATEWAY_PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    first = spawn("gateway", nats_server.url, **env)
    key = admin_key(data_dir, timeout_s=30)
    await _wait_http(url, admin_headers(data_dir), first.log)
    first.stop()
    second = spawn("gateway", nats_server.url, **env)
    await _wait_http(url, admin_headers(data_dir), second.log)
    second.stop()
    assert first.log().count(key) == 1
    assert key not in second.log()
    # Only the banner carries the key: no JSON log line does.
    assert not [line for line in first.log().splitlines() if key in line and '"msg"' in line]
