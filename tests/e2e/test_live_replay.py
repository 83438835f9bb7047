"""The check that makes the live loop trustworthy: the shipped real prices replayed through the
market-data stream into a live strategy trade exactly what the backtest of the same model
trades on the same bars: the same positions bar by bar, the same fills, the same P&L (1e-9)."""

from __future__ import annotations

import httpx
import pytest

from services.executor.plugins.quant.live.feeds import ReplaySource, pump
from services.executor.plugins.quant.live.marketdata import ensure_bars_stream
from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.clients.live import LiveClient
from shared.clients.state import StateClient
from shared.contracts.executor import TaskStatus
from shared.contracts.live import StrategySpec
from tests.gateway_auth import admin_headers
from tests.live import SYMBOLS, fills, positions_by_bar, renamed, trained_model, wait_for
from tests.support import System

pytestmark = pytest.mark.timeout(300)
TOLERANCE = 1e-9
CAPITAL = 1_000_000.0


async def test_live_replay_equals_the_backtest(system: System, bus: Bus,
                                               unique: str) -> None:
    model = await trained_model(bus, f"live-{unique}")
    frame, names = renamed(unique[:8])
    name = f"replay-{unique[:8]}"
    await ensure_bars_stream(bus.nc.jetstream())
    live = LiveClient(bus)
    started = await live.start(StrategySpec(name=name, model=model, symbols=list(names.values()),
                                            capital=CAPITAL, cost_bps=5.0))
    assert started.desired == "running" and started.task_id
    stats = await pump(ReplaySource(frame), bus.nc.jetstream())
    assert stats.published == len(frame) and stats.duplicates == 0
    last = frame["timestamp"].max().isoformat()
    status = await wait_for(bus, name, lambda s: s.last_timestamp == last)

    executor = ExecutorClient(bus)
    task = await executor.submit("backtest", {"model": model, "symbols": SYMBOLS,
                                              "costs": {"bps": 5.0}})
    done = await executor.wait(task.task_id, timeout_s=120)
    assert done.status == TaskStatus.SUCCEEDED, done.error
    stored_ns, _, key = done.result["stored"].partition("/")  # type: ignore[index]
    backtest = (await StateClient(bus).get(stored_ns, key)).value

    # P&L: the backtest's last equity is the period ending at the last bar, which is the live
    # book marked at that bar, before the last bar's own fills (which the backtest leaves out).
    last_costs = sum(f.cost for f in status.recent_fills if f.timestamp == last)
    marked = (status.equity + last_costs) / CAPITAL
    assert abs(marked - (1.0 + backtest["metrics"]["total_return"])) <= TOLERANCE
    # Trades: the position of every symbol at every bar the backtest traded.
    events = await fills(bus, name)
    for real, test_name in names.items():
        live_positions = positions_by_bar(events, backtest["timestamps"], test_name)
        assert live_positions == backtest["positions"][real], real
    in_window = [e for e in events if e.timestamp <= backtest["timestamps"][-1]]
    assert len(in_window) == backtest["metrics"]["n_trades"]
    assert status.bars == len(frame) and status.duplicates == 0 and status.late == 0
    assert not status.killed and status.model == f"{model.split('@')[0]}@1"

    # A replay of the same bars again is dropped by JetStream, and so changes nothing.
    again = await pump(ReplaySource(frame.tail(30)), bus.nc.jetstream())
    assert again.duplicates == 30
    await _kill_through_the_gateway(system, bus, name, status.equity)
    ended = await executor.wait(started.task_id, timeout_s=30)
    assert ended.status == TaskStatus.SUCCEEDED, ended.error


async def _kill_through_the_gateway(system: System, bus: Bus, name: str,
                                    equity: float) -> None:
    """A viewer reads the strategy but may not touch the kill switch; an operator may."""
    admin = admin_headers(system.data_dir)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as http:
        key = await http.post("/v1/keys", json={"label": "live", "role": "viewer"},
                              headers=admin)
        viewer = {"X-API-Key": key.json()["key"]}
        seen = await http.get(f"/v1/strategies/{name}", headers=viewer)
        assert seen.status_code == 200 and seen.json()["equity"] == equity
        assert any(s["name"] == name for s in
                   (await http.get("/v1/strategies", headers=viewer)).json()["strategies"])
        refused = await http.post(f"/v1/strategies/{name}/kill", json={}, headers=viewer)
        assert refused.status_code == 403, refused.text
        killed = await http.post(f"/v1/strategies/{name}/kill", json={"reason": "test"},
                                 headers=admin)
        assert killed.status_code == 200 and killed.json()["desired"] == "killed"
    flat = await wait_for(bus, name, lambda s: s.killed)
    assert all(p.position == 0.0 and p.quantity == 0.0 for p in flat.positions)
    assert flat.kill_reason == "operator kill switch" and flat.breaches >= 1
