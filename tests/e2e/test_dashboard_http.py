"""What a browser, an uptime checker and Prometheus get from the gateway's public pages: the
page (GET and HEAD) with its refresh interval and security headers, its icon, the pinned chart
library with its licence, and /metrics with one charset."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import System


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(system.gateway_url), timeout=30) as client:
        yield client


def test_page_answers_get_and_head_with_the_same_headers(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-refresh-s="5"' in page.text  # QUANTOPS_GATEWAY_DASHBOARD_REFRESH_S default
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-security-policy", "x-content-type-options"):
        assert head.headers[name] == page.headers[name], name


def test_favicon_and_the_chart_library_are_served(http: httpx.Client) -> None:
    icon = http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    library = http.get("/static/vendor/chartjs/chart.umd.min.js")
    assert library.status_code == 200 and b"Chart.js v4.6.2" in library.content[:200]
    licence = http.get("/static/vendor/chartjs/LICENSE.md")
    assert licence.status_code == 200 and b"MIT License" in licence.content


def test_metrics_content_type_names_its_charset_once(http: httpx.Client) -> None:
    reply = http.get("/metrics")
    assert reply.status_code == 200
    content_type = reply.headers["content-type"]
    assert content_type.startswith("text/plain; version=") and \
        content_type.count("charset") == 1, content_type
