"""Every metric the Grafana dashboard and the Prometheus alerts use is exported by a running
system, and each service's metrics page is up."""

from __future__ import annotations

import httpx

from tests.deploy.metricnames import deploy_metric_names, exported_metric_names
from tests.gateway_auth import admin_headers
from tests.support import System


async def test_dashboard_and_alert_metrics_are_all_exported(system: System) -> None:
    urls = system.metrics
    assert isinstance(urls, dict)
    async with httpx.AsyncClient(timeout=10) as http:
        # Touch the gateway once so its HTTP metrics have a sample.
        await http.get(f"{system.gateway_url}/v1/me",
                       headers=admin_headers(system.data_dir))
        pages = {service: (await http.get(url)).text for service, url in urls.items()}
    for service, page in pages.items():
        assert f'quantops_up{{service="{service}"}} 1.0' in page, service
    missing = deploy_metric_names() - exported_metric_names("\n".join(pages.values()))
    assert not missing, f"dashboard/alerts use metrics nobody exports: {sorted(missing)}"
