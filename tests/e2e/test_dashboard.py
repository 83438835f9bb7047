"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``; ``make test``
installs it) loads ``/`` from the running system, shows nothing but the Connect form before a
key is given, connects with an API key, and shows tasks submitted afterwards change status live
over the SSE feed; models, comparison, namespaces and every service's health (the gateway's
version and uptime too) are on the page.

``QUANTOPS_UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/dashboard.png``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shared.clients.http import Client
from shared.contracts.executor import WorkflowTask
from shared.contracts.registry import VersionSpec
from tests.browser import (
    Page,
    browser,
    chromium,
    keep_screenshot,
    log_in,
    open_dashboard,
    open_page,
    screenshot,
)
from tests.gateway_auth import admin_key
from tests.support import System


def seed(client: Client, unique: str) -> str:
    """Something on every panel: a model with two versions, state, a workflow, a failed
    task."""
    model = f"momentum-{unique}"
    for sharpe, rmse in ((1.1, 0.21), (1.6, 0.18)):
        client.models.upload(model, b'{"w": [0.1, 0.2]}', spec=VersionSpec(
            format="json", metrics={"sharpe": sharpe, "rmse": rmse, "hit_rate": 0.54}))
    client.models.promote(model, 2, reason="dashboard demo")
    for i in range(3):
        client.state.put(f"positions-{unique}", f"AAPL/{i}", {"qty": 100 * i})
    client.tasks.submit("fail", {"message": "demo failure"}, max_attempts=1)
    client.tasks.submit_workflow([WorkflowTask(name="features", type="noop"),
                                  WorkflowTask(name="train", type="sleep", depends_on=[
                                      "features"], input={"seconds": 0.2})],
                                 name=f"nightly-{unique}")
    return model


@pytest.mark.timeout(300)
async def test_dashboard_shows_live_task_updates(system: System, unique: str,
                                                 tmp_path: Path) -> None:
    binary = chromium()
    url, key = system.gateway_url, admin_key(system.data_dir)
    client = Client(url, api_key=key)
    model = seed(client, unique)
    with browser(binary, tmp_path / "profile") as port:
        async with open_page(port) as page:
            await open_dashboard(page, url, "!!document.querySelector('#login')")
            # Before a key is given, the cards are not drawn under the form (main's display:
            # grid must not override the hidden attribute).
            assert await page.js("getComputedStyle(document.querySelector('#app')).display") \
                == "none"
            await log_in(page, key)
            ids = [(await asyncio.to_thread(client.tasks.submit, "sleep", {"seconds": 0.4},
                                            priority=p)).task_id for p in ("high", "normal")]
            for task_id in ids:  # appeared after the page loaded: only the feed brought them
                await page.until(f"!!document.querySelector('[data-task-id=\"{task_id}\"]"
                                 "[data-via=\"sse\"][data-status=\"succeeded\"]')")
            await check_panels(page, model, unique)
            shot = await screenshot(page)
    client.close()
    keep_screenshot(shot, "dashboard.png", tmp_path)


async def check_panels(page: Page, model: str, unique: str) -> None:
    await page.until(f"!!document.querySelector('[data-model=\"{model}\"]')")
    await page.until(f"!!document.querySelector('[data-namespace=\"positions-{unique}\"]')")
    await page.until("document.querySelectorAll('#services tbody tr').length === 4")
    gateway = await page.js("[...document.querySelectorAll('#services [data-service=gateway] "
                            "td')].map((td) => td.textContent)")
    assert gateway[2] and gateway[3], gateway  # version and uptime of the gateway itself
    await page.until("document.querySelectorAll('#queue [data-priority]').length === 3")
    await page.until("!document.querySelector('#failed-total')?.textContent"
                     ".startsWith('0 ')")
    await page.until(f"document.querySelector('#workflows').textContent"
                     f".includes('nightly-{unique}')")
    # Versions side by side: pick the model, tick both versions, compare.
    await page.js(f"document.querySelector('[data-model=\"{model}\"]').click(); true")
    await page.until("document.querySelectorAll('#versions input').length === 2")
    await page.js("document.querySelectorAll('#versions input').forEach(i => i.click());"
                  "document.querySelector('#compare').click(); true")
    winner = await page.until("document.querySelector('#comparison-table "
                              "[data-metric=\"sharpe\"] [data-winner]')?.dataset.winner")
    assert winner == f"{model}@2"
