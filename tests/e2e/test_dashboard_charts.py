"""The dashboard's charts in a real browser (Debian's headless Chromium, ``make test`` installs
it) on the shipped real prices: a sweep trains three ridge versions, the best is promoted and
backtested; the test then logs in and opens each view, and checks that every chart on screen
holds data and drew pixels (not an empty canvas), with no script error, CSP refusal or failed
load on the way:

- Performance: the production version's walk-forward equity with drawdown, its folds, its
  backtest;
- Compare: the three versions' curves on one chart, their metrics side by side;
- Trials: the sweep's metric over time, and alpha against the metric;
- Tasks: queue depth and throughput over the last hour.

Each view is saved as a screenshot (``docs/charts-*.png`` with QUANTOPS_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from shared.clients.http import Client
from tests.browser import (
    Page,
    browser,
    chromium,
    element_screenshot,
    keep_screenshot,
    log_in,
    open_dashboard,
    open_page,
)
from tests.gateway_auth import admin_key
from tests.support import System

TRAIN = {"symbols": ["IBM"], "start": "2008-01-01", "end": "2011-12-31",
         "walk_forward": {"n_splits": 3, "min_train_size": 252}}
ALPHAS = [0.1, 10.0, 1000.0]


def seed(client: Client, model: str) -> dict[str, Any]:
    """Three versions from a sweep, the best promoted and backtested on later data."""
    client.datasets.seed_demo()
    sweep = client.tasks.submit("sweep", {
        **TRAIN, "estimator": "ridge", "model_name": model, "strategy": "grid",
        "space": {"alpha": {"type": "choice", "values": ALPHAS}}, "metric": "sharpe"})
    done = client.tasks.wait(sweep.task_id, timeout_s=240)
    assert done.status == "succeeded", done
    best = done.result["best"]
    client.models.promote(model, best["version"], reason="best sharpe")
    backtest = client.tasks.submit("backtest", {"model": f"{model}@production",
                                                "symbols": ["IBM"], "start": "2012-01-01"})
    assert client.tasks.wait(backtest.task_id, timeout_s=120).status == "succeeded"
    return {"sweep": sweep.task_id, "best": best["version"]}


async def charts_drawn(page: Page, *ids: str) -> list[dict[str, Any]]:
    """Wait until each canvas holds data and drew pixels; every visible chart too."""
    for id_ in ids:
        await page.until(f"window.qoCharts.inventory().some((c) => c.id === {json.dumps(id_)} "
                         "&& c.chart && c.points > 0 && c.inked > 0)")
    inventory: list[dict[str, Any]] = await page.js("window.qoCharts.inventory()")
    empty = [c for c in inventory if not (c["chart"] and c["points"] > 0 and c["inked"] > 0)]
    assert not empty, empty
    return inventory


@pytest.mark.timeout(420)
async def test_every_chart_renders_with_data(system: System, unique: str,
                                             tmp_path: Path) -> None:
    binary = chromium()
    url, key = str(system.gateway_url), admin_key(Path(str(system.data_dir)))
    client = Client(url, api_key=key, timeout_s=60)
    model = f"charts-{unique}"
    seeded = await asyncio.to_thread(seed, client, model)
    shots: dict[str, bytes] = {}
    with browser(binary, tmp_path / "profile") as port:
        async with open_page(port) as page:
            await open_dashboard(page, url, "!!window.qoCharts")
            await log_in(page, key)

            # Tasks: the sweep's children (it trains the last trial itself), the sweep and the
            # backtest finished this hour.
            await charts_drawn(page, "queue-chart", "throughput-chart")
            finished = await page.js("Chart.getChart(document.querySelector('#throughput-chart'))"
                                     ".data.datasets.flatMap((d) => d.data)"
                                     ".reduce((a, b) => a + b, 0)")
            assert finished >= (len(ALPHAS) - 1) + 2
            shots["charts-tasks.png"] = await element_screenshot(page, "#tasks-card")

            # Performance: selecting the model shows its production version.
            await page.until(f"!!document.querySelector('[data-model=\"{model}\"]')")
            await page.js(f"document.querySelector('[data-model=\"{model}\"]').click(); true")
            ref = f"{model}@{seeded['best']}"
            await page.until(f"document.querySelector('#performance').dataset.ref === "
                             f"{json.dumps(ref)}")
            await charts_drawn(page, "equity-chart", "folds-chart", "backtests-chart")
            folds = await page.js("Chart.getChart(document.querySelector('#folds-chart'))"
                                  ".data.labels.length")
            assert folds == TRAIN["walk_forward"]["n_splits"]  # type: ignore[index]
            shots["charts-performance.png"] = await element_screenshot(page,
                                                                       "#performance-card")

            # Compare: every version ticked, curves on one chart, metrics side by side.
            await page.until(f"document.querySelectorAll('#versions input').length === "
                             f"{len(ALPHAS)}")
            await page.js("document.querySelectorAll('#versions input').forEach(i => i.click());"
                          "document.querySelector('#compare').click(); true")
            await charts_drawn(page, "compare-equity", "compare-metrics")
            curves = await page.js("Chart.getChart(document.querySelector('#compare-equity'))"
                                   ".data.datasets.map((d) => d.label)")
            assert sorted(curves) == sorted(f"{model}@{v}" for v in range(1, len(ALPHAS) + 1))
            shots["charts-compare.png"] = await element_screenshot(page, "#models-card")

            # Trials: the sweep's three trials, alpha against sharpe.
            await page.until(f"document.querySelector('#trials-sweep').value === "
                             f"{json.dumps(seeded['sweep'])}")
            await page.until(f"document.querySelector('#trials-card').dataset.runs === "
                             f"'{len(ALPHAS)}'")
            await charts_drawn(page, "trials-trend", "trials-param-alpha")
            alphas = await page.js("Chart.getChart(document.querySelector('#trials-param-alpha'))"
                                   ".data.datasets[0].data.map((p) => p.x)")
            assert sorted(alphas) == ALPHAS
            shots["charts-trials.png"] = await element_screenshot(page, "#trials-card")
            assert not page.errors, page.errors  # no exception, CSP refusal or failed load
    client.close()
    for name, data in shots.items():
        keep_screenshot(data, name, tmp_path)
