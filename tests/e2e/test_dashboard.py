"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, installed here
when missing) loads ``/`` from the running system, connects with an API key, and shows tasks
submitted afterwards change status live over the SSE feed; models, comparison, namespaces and
every service's health are on the page too.

Chromium is driven over the DevTools protocol (``--remote-debugging-port``, a websocket).
``QUANTOPS_UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from shared.clients.http import Client
from shared.contracts.executor import WorkflowTask
from shared.contracts.registry import VersionSpec
from shared.natsserver import free_port
from tests.gateway_auth import admin_key
from tests.support import ROOT, System

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--window-size=1400,1200"]


def _apt_install() -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env,
                          capture_output=True, timeout=900, check=False)


def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (CI runs as root)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is missing and apt-get cannot install it here (not root)")
    if _apt_install().returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600,
                       check=False)
        result = _apt_install()
        if result.returncode != 0:
            pytest.skip("apt-get install chromium failed: " + result.stderr.decode()[-500:])
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


@contextlib.contextmanager
def browser(binary: str, profile: Path) -> Iterator[int]:
    """A headless Chromium with the DevTools protocol on a free port; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}",
                             f"--remote-debugging-port={port}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Page:
    """One browser tab over the DevTools protocol: calls and JavaScript evaluation."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        call_id = self.last_id
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events of the page arrive in between: skipped
            message = json.loads(await self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]  # type: ignore[no-any-return]

    async def js(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def until(self, expression: str, timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                body = await self.js("document.body.innerText")
                raise AssertionError(f"not true within {timeout_s}s: {expression}\n{body}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_page(port: int) -> AsyncIterator[Page]:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        while True:
            with contextlib.suppress(httpx.TransportError, ValueError):
                targets = (await http.get("/json/list")).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("chromium's DevTools endpoint did not come up")
            await asyncio.sleep(0.2)
    async with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
        page = Page(ws)
        await page.call("Runtime.enable")
        yield page


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


@pytest.mark.timeout(900)  # the first run may install chromium
async def test_dashboard_shows_live_task_updates(system: System, unique: str,
                                                 tmp_path: Path) -> None:
    binary = chromium()
    url, key = system.gateway_url, admin_key(system.data_dir)
    client = Client(url, api_key=key)
    model = seed(client, unique)
    with browser(binary, tmp_path / "profile") as port:
        async with open_page(port) as page:
            await page.call("Page.navigate", url=url + "/")
            await page.until("document.readyState === 'complete' && !!document.querySelector"
                             "('#login')")
            await page.js(f"document.querySelector('#key').value = {json.dumps(key)};"
                          "document.querySelector('#login').requestSubmit(); true")
            await page.until("document.body.dataset.live === '1'")
            ids = [(await asyncio.to_thread(client.tasks.submit, "sleep", {"seconds": 0.4},
                                            priority=p)).task_id for p in ("high", "normal")]
            for task_id in ids:  # appeared after the page loaded: only the feed brought them
                await page.until(f"!!document.querySelector('[data-task-id=\"{task_id}\"]"
                                 "[data-via=\"sse\"][data-status=\"succeeded\"]')")
            await check_panels(page, model, unique)
            shot = await screenshot(page)
    client.close()
    keep_screenshot(shot, tmp_path)


async def check_panels(page: Page, model: str, unique: str) -> None:
    await page.until(f"!!document.querySelector('[data-model=\"{model}\"]')")
    await page.until(f"!!document.querySelector('[data-namespace=\"positions-{unique}\"]')")
    await page.until("document.querySelectorAll('#services tbody tr').length === 4")
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


async def screenshot(page: Page) -> bytes:
    shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    return data


def keep_screenshot(data: bytes, tmp_path: Path) -> None:
    (tmp_path / "dashboard.png").write_bytes(data)
    if os.environ.get("QUANTOPS_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs" / "dashboard.png").write_bytes(data)
