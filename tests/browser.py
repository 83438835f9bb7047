"""A real browser for the dashboard tests: Debian's headless Chromium driven over the DevTools
protocol (``--remote-debugging-port``, a websocket), no Selenium or Playwright.

``QUANTOPS_UPDATE_SCREENSHOT=1`` also writes the screenshots the tests take under ``docs/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from shared.natsserver import free_port
from tests.support import ROOT, eventually

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--window-size=1400,1200"]


def chromium() -> str:
    """Debian's chromium. ``make test`` installs it (``make chromium``) before pytest runs;
    a test never installs software itself."""
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError("chromium is not installed: run `make chromium` (apt-get install -y "
                           "chromium) or `make test`, which does it first")
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
        #: Uncaught exceptions and console/network/CSP errors the page reported, as text.
        self.errors: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        call_id = self.last_id
        await self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:  # events of the page arrive in between: errors kept, the rest skipped
            message = json.loads(await self.ws.recv())
            self._note(message)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]  # type: ignore[no-any-return]

    def _note(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(details.get("exception", {}).get("description")
                               or details.get("text", "exception"))
        elif message.get("method") == "Log.entryAdded" and \
                params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    async def js(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def until(self, expression: str, timeout_s: float = 20.0) -> Any:
        """The value of ``expression`` once it is truthy (the page's text in the failure)."""
        try:
            return await eventually(lambda: self.js(expression), timeout_s=timeout_s,
                                    interval_s=0.1, what=expression)
        except TimeoutError:
            body = await self.js("document.body.innerText")
            raise AssertionError(f"not true within {timeout_s}s: {expression}\n{body}") from None


async def _page_target(http: httpx.AsyncClient) -> dict[str, Any] | None:
    with contextlib.suppress(httpx.TransportError, ValueError):
        targets = (await http.get("/json/list")).json()
        return next((t for t in targets if t.get("type") == "page"), None)
    return None


@contextlib.asynccontextmanager
async def open_page(port: int) -> AsyncIterator[Page]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        target = await eventually(lambda: _page_target(http), timeout_s=30, interval_s=0.2,
                                  what="chromium's DevTools page")
    async with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
        page = Page(ws)
        await page.call("Runtime.enable")
        await page.call("Log.enable")
        yield page


async def open_dashboard(page: Page, url: str, loaded: str = "true") -> None:
    """Load the dashboard at ``url`` and wait until the document is complete and ``loaded``
    (a JavaScript expression: the page's own scripts are up) holds."""
    await page.call("Page.navigate", url=url + "/")
    await page.until(f"document.readyState === 'complete' && ({loaded})")


async def log_in(page: Page, key: str, live: str = "document.body.dataset.live === '1'"
                 ) -> None:
    """Submit ``key`` on the dashboard's login form and wait until ``live`` holds (by default:
    the page's event stream is open)."""
    await page.js(f"document.querySelector('#key').value = {json.dumps(key)};"
                  "document.querySelector('#login').requestSubmit(); true")
    await page.until(live)


async def screenshot(page: Page) -> bytes:
    shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    return data


async def element_screenshot(page: Page, selector: str) -> bytes:
    """A PNG of one element of the page (its bounding box, scrolled into view)."""
    box = await page.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                        ".getBoundingClientRect(); return {x: r.x + window.scrollX, "
                        "y: r.y + window.scrollY, width: r.width, height: r.height}; })()")
    shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                           clip={**box, "scale": 1})
    data = base64.b64decode(shot["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, selector
    return data


def keep_screenshot(data: bytes, name: str, tmp_path: Path) -> None:
    """Always under the test's tmp dir; also in ``docs/`` with QUANTOPS_UPDATE_SCREENSHOT=1."""
    (tmp_path / name).write_bytes(data)
    if os.environ.get("QUANTOPS_UPDATE_SCREENSHOT") == "1":
        (ROOT / "docs" / name).write_bytes(data)
