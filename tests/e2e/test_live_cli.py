"""``quantops live``: replay a dataset as a live feed (the ``replay_bars`` task), start a
strategy on it, read it, and stop it, all through the gateway as a user would."""

from __future__ import annotations

import json

import pytest

from cli import main as cli_main
from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.contracts.executor import TaskStatus
from tests.gateway_auth import admin_key
from tests.live import trained_model, wait_for
from tests.support import System

pytestmark = pytest.mark.timeout(240)


def quantops(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert cli_main.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


async def test_replay_start_show_stop(system: System, bus: Bus, unique: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = await trained_model(bus, f"cli-{unique}")
    monkeypatch.setenv("QUANTOPS_CLIENT_URL", system.gateway_url)
    monkeypatch.setenv("QUANTOPS_API_KEY", admin_key(system.data_dir))
    name = f"cli-{unique[:8]}"
    started = quantops(capsys, "live", "start", name, "--model", model, "--symbols", "GOOG",
                       "--limits", '{"max_position": 0.5}')
    assert started["desired"] == "running"  # type: ignore[index]
    replay = quantops(capsys, "live", "replay", "--symbols", "GOOG", "--start", "2012-01-01")
    done = await ExecutorClient(bus).wait(replay["task_id"], timeout_s=60)  # type: ignore[index]
    assert done.status == TaskStatus.SUCCEEDED, done.error
    assert done.result["published"] + done.result["duplicates"] == done.result["bars"]  # type: ignore[index]
    await wait_for(bus, name, lambda s: s.last_timestamp == "2013-03-01T00:00:00")
    shown = quantops(capsys, "live", "show", name)
    assert shown["spec"]["limits"]["max_position"] == 0.5  # type: ignore[index]
    assert {abs(p["position"]) for p in shown["positions"]} <= {0.0, 0.5}  # type: ignore[index]
    listed = quantops(capsys, "live", "ls")
    assert name in {s["name"] for s in listed}  # type: ignore[union-attr]
    stopped = quantops(capsys, "live", "stop", name, "--reason", "done")
    assert stopped["desired"] == "stopped"  # type: ignore[index]
