"""The dashboard's live view in a real browser (headless Chromium): a strategy trades the
shipped prices replayed through the market-data stream while the page is open; its P&L,
drawdown and positions are drawn and move with the fills the event stream announces
(``/v1/strategy-events``), and its risk state is on the card. A screenshot is kept
(``docs/charts-live.png`` with QUANTOPS_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from services.executor.plugins.quant.live.feeds import ReplaySource, pump
from services.executor.plugins.quant.live.marketdata import ensure_bars_stream
from shared.bus import Bus
from shared.clients.http import Client
from shared.contracts.live import FillEvent, StrategySpec
from tests.browser import (
    browser,
    chromium,
    element_screenshot,
    keep_screenshot,
    log_in,
    open_dashboard,
    open_page,
)
from tests.e2e.test_dashboard_charts import charts_drawn
from tests.gateway_auth import admin_key
from tests.live import renamed, trained_model, wait_for
from tests.support import System

BARS = 250  # per symbol: the last year of the shipped prices


@pytest.mark.timeout(300)
async def test_live_strategy_is_drawn_as_it_trades(system: System, bus: Bus,
                                                   unique: str, tmp_path: Path) -> None:
    binary = chromium()
    url, key = str(system.gateway_url), admin_key(Path(str(system.data_dir)))
    model = await trained_model(bus, f"dash-live-{unique}")
    frame, names = renamed(unique[:8])
    frame = frame.groupby("symbol").tail(BARS).reset_index(drop=True)
    name = f"dash-{unique[:8]}"
    await ensure_bars_stream(bus.nc.jetstream())
    with browser(binary, tmp_path / "profile") as port:
        async with open_page(port) as page:
            await open_dashboard(page, url, "!!window.qoLive")
            await log_in(page, key, "document.querySelector('#live-card').dataset.live === '1'")

            client = Client(url, api_key=key, timeout_s=60)
            await asyncio.to_thread(client.strategies.start, StrategySpec(
                name=name, model=model, symbols=list(names.values())))
            # Also read through the typed client: the same feed the page follows.
            seen: list[FillEvent] = []
            subscribed = threading.Event()

            def first_fill() -> None:
                for event in client.strategies.events(strategy=name, on_ready=subscribed.set):
                    if isinstance(event, FillEvent):
                        seen.append(event)
                        return

            reader = asyncio.create_task(asyncio.to_thread(first_fill))
            # The fills come from what is sent next: the reader's feed must be live before.
            assert await asyncio.to_thread(subscribed.wait, 30), "the event feed never opened"
            # Two halves, the page seen to draw the first before the second is sent: a replay
            # that finished before the page's first read would leave it a single point.
            selector = f"[data-strategy=\"{name}\"]"
            middle = frame["timestamp"].sort_values().iloc[len(frame) // 2]
            first = frame[frame["timestamp"] <= middle]
            halves = ((first, first), (frame[frame["timestamp"] > middle], frame))
            for sent, seen_so_far in halves:
                stats = await pump(ReplaySource(sent.reset_index(drop=True)), bus.nc.jetstream())
                assert stats.published == len(sent)
                last = seen_so_far["timestamp"].max().isoformat()
                await wait_for(bus, name, lambda s, last=last: s.last_timestamp == last)
                await page.until(f"document.querySelector('{selector}')?.dataset.bars === "
                                 f"'{len(seen_so_far)}'", timeout_s=30)  # a bar per symbol
            await asyncio.wait_for(reader, 30)
            assert seen and seen[0].strategy == name
            await page.until("Number(document.querySelector('#live-card').dataset.events) > 0")
            await charts_drawn(page, f"live-pnl-{name}", f"live-positions-{name}")
            points = await page.js(f"Chart.getChart(document.getElementById('live-pnl-{name}'))"
                                   ".data.datasets[0].data.length")
            assert points >= 2  # the curve moved while the page watched
            assert await page.js(f"document.querySelector('{selector} [data-risk]')"
                                 ".dataset.risk") in ("ok", "breached")
            shot = await element_screenshot(page, "#live-card")
            assert not page.errors, page.errors
            await asyncio.to_thread(client.strategies.stop, name, reason="test over")
            client.close()
    keep_screenshot(shot, "charts-live.png", tmp_path)
