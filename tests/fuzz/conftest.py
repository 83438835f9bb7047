"""A gateway of the fuzz tests' own, in front of the session's services: rate limits lifted
(schemathesis sends hundreds of requests a second) and its own auth data, so the users, keys
and sessions the fuzzer creates, changes and deletes are nobody else's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.natsserver import free_port
from tests.gateway_auth import admin_headers
from tests.support import (
    ServiceProcess,
    System,
    eventually_sync,
    service_env,
    services_running,
)

#: The gateway settings of a fuzz run: no limit a fuzzer could trip over by volume alone.
UNLIMITED = {"QUANTOPS_GATEWAY_RATE_LIMIT_PER_S": "0",
             "QUANTOPS_GATEWAY_ANONYMOUS_RATE_LIMIT_PER_S": "0",
             "QUANTOPS_GATEWAY_LOGIN_MAX_FAILURES": "0"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-examples", type=int, default=3,
                     help="schemathesis examples per operation and mode (make fuzz: 100)")


@pytest.fixture(scope="module")
def fuzz_gateway(system: System, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[dict[str, object]]:
    """``{"url", "headers", "process"}`` of a gateway process with rate limits lifted."""
    tmp = tmp_path_factory.mktemp("fuzz-gateway")
    port = free_port()
    env = service_env(system.nats_url, tmp / "data", QUANTOPS_GATEWAY_PORT=str(port),
                      **UNLIMITED)
    process = ServiceProcess("gateway", env, tmp / "gateway.log")
    with services_running([process]):
        process.start()
        url = f"http://127.0.0.1:{port}"
        headers = admin_headers(tmp / "data", timeout_s=60)
        _wait_ready(url, process)
        yield {"url": url, "headers": headers, "process": process}


def _wait_ready(url: str, process: ServiceProcess, timeout_s: float = 60.0) -> None:
    def ready() -> bool:
        assert process.alive(), process.log()[-2000:]
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    eventually_sync(ready, timeout_s=timeout_s, interval_s=0.1,
                    what=f"the fuzz gateway at {url} ready")
