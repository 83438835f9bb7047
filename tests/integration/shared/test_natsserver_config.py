"""The embedded nats-server as ``quantops up`` configures it: every acknowledged write fsynced
unless a validated setting relaxes it, read back from the generated file and from the running
server's own ``/varz``."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from cli.supervisor import embedded_nats
from shared.natsserver import free_port
from shared.settings import Settings, SettingsError


def _running_config(settings: Settings, data_dir: Path) -> tuple[str, dict[str, object]]:
    settings = msgspec_replace(settings, nats_port=free_port(), nats_monitor_port=free_port())
    server = embedded_nats(settings, data_dir)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz") as r:
            varz = json.load(r)
        return server.config_path.read_text(), varz["jetstream"]["config"]
    finally:
        server.stop()


def msgspec_replace(settings: Settings, **changes: object) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, **changes)


def test_default_is_sync_always(tmp_path: Path) -> None:
    text, config = _running_config(Settings.from_env({}), tmp_path)
    assert "  sync_interval: \"always\"\n" in text
    assert config["sync_always"] is True
    assert config["max_storage"] == Settings().nats_max_file_store


def test_a_setting_relaxes_it(tmp_path: Path) -> None:
    settings = Settings.from_env({"QUANTOPS_NATS_SYNC_INTERVAL": "2m",
                                  "QUANTOPS_NATS_MAX_FILE_STORE": str(1024**3)})
    text, config = _running_config(settings, tmp_path)
    assert "  sync_interval: \"2m\"\n" in text
    assert not config.get("sync_always")
    assert config["sync_interval"] == 120 * 10**9
    assert config["max_storage"] == 1024**3


@pytest.mark.parametrize("value", ["sometimes", "2 minutes", "-1s"])
def test_a_bad_value_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="QUANTOPS_NATS_SYNC_INTERVAL"):
        Settings.from_env({"QUANTOPS_NATS_SYNC_INTERVAL": value})


def _server_environ(settings: Settings, data_dir: Path) -> tuple[dict[str, str], int]:
    """The running server's environment and the memory limit its ``/varz`` reports."""
    settings = msgspec_replace(settings, nats_port=free_port(), nats_monitor_port=free_port())
    server = embedded_nats(settings, data_dir)
    server.start()
    try:
        assert server.process is not None
        raw = Path(f"/proc/{server.process.pid}/environ").read_bytes()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/varz") as r:
            limit = int(json.load(r).get("gomemlimit", 0))
        return dict(item.decode().partition("=")[::2] for item in raw.split(b"\0") if item), limit
    finally:
        server.stop()


def test_a_memory_limit_reaches_the_server_as_gomemlimit(tmp_path: Path) -> None:
    limited = Settings.from_env({"QUANTOPS_NATS_MEMORY_LIMIT": str(96 * 2**20)})
    environ, limit = _server_environ(limited, tmp_path / "a")
    assert environ["GOMEMLIMIT"] == str(96 * 2**20) and limit == 96 * 2**20
    environ, limit = _server_environ(Settings.from_env({}), tmp_path / "b")
    assert "GOMEMLIMIT" not in environ and limit in (0, 2**63 - 1)  # none: Go's default


@pytest.mark.parametrize("value", ["-1", "lots", "1.5GB"])
def test_a_bad_memory_limit_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="QUANTOPS_NATS_MEMORY_LIMIT"):
        Settings.from_env({"QUANTOPS_NATS_MEMORY_LIMIT": value})
