"""Session fixtures: one real nats-server with JetStream in a temp dir, and helpers to run real
service processes against it. Tests isolate themselves with unique names (uuid), not servers;
a test that needs a pristine server (restart, limits) asks ``nats_factory`` for its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared.bus import Bus, connect_nats
from shared.natsserver import EmbeddedNats
from shared.settings import Settings
from tests.support import (
    ServiceProcess,
    System,
    service_env,
    start_nats,
    stop_all,
    wait_healthy,
)

# A real SDK provider (no exporter), so spans made in the test process have valid contexts.
trace.set_tracer_provider(TracerProvider())


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture
def nats_factory(tmp_path: Path) -> Iterator[Callable[..., EmbeddedNats]]:
    """Start extra, private nats-servers; all are stopped after the test."""
    started: list[EmbeddedNats] = []

    def make(**kwargs: str) -> EmbeddedNats:
        server = start_nats(tmp_path / f"nats-{len(started)}", **kwargs)
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def settings_for() -> Callable[[str], Settings]:
    def make(url: str) -> Settings:
        return Settings.from_env({"QUANTOPS_NATS_URL": url})

    return make


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """A client connection to the session server, as a test's own Bus."""
    settings = Settings.from_env({"QUANTOPS_NATS_URL": nats_server.url})
    nc = await connect_nats(settings, name="quantops-test", connect_timeout_s=5)
    b = Bus(nc, service="test", timeout_s=10)
    yield b
    await b.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``quantops serve <service>`` processes; all are stopped after the test."""
    procs: list[ServiceProcess] = []

    def start(service: str, nats_url: str, **env: str) -> ServiceProcess:
        data_dir = Path(env.pop("data_dir", str(tmp_path / "data")))
        p = ServiceProcess(service, service_env(nats_url, data_dir, **env),
                           tmp_path / f"{service}-{len(procs)}.log")
        procs.append(p.start())
        return p

    yield start
    stop_all(procs)


@pytest.fixture(scope="session")
async def system(
    nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    """All four services as processes against the session server; the gateway on a free port.

    Every service exports spans over OTLP/HTTP to an in-test receiver (``otlp``).
    """
    from shared.natsserver import free_port
    from tests.otlp import OtlpReceiver
    from tests.support import services_running

    tmp = tmp_path_factory.mktemp("system")
    port = free_port()
    otlp = OtlpReceiver().start()
    env = {"QUANTOPS_GATEWAY_PORT": str(port), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint}
    metrics = {s: free_port() for s in ("state", "registry", "executor", "gateway")}
    procs = [
        ServiceProcess(s, service_env(nats_server.url, tmp / "data", **env,
                                      QUANTOPS_METRICS_PORT=str(port)), tmp / f"{s}.log")
        for s, port in metrics.items()
    ]
    with services_running(procs):
        for p in procs:
            p.start()
        for p in procs:
            await wait_healthy(nats_server.url, p.service, timeout_s=60)
        yield System(nats_url=nats_server.url, gateway_url=f"http://127.0.0.1:{port}",
                     processes={p.service: p for p in procs}, data_dir=tmp / "data", otlp=otlp,
                     metrics={s: f"http://127.0.0.1:{p}/metrics" for s, p in metrics.items()})
    otlp.stop()



#: Fixtures that start service processes (or a gateway) once per session or module: the first
#: test to use one pays for that start-up (up to a minute on a busy 2-core machine), so that
#: test alone gets a longer timeout; every other test keeps the 30 s default.
STARTUP_TIMEOUT_S = 120
SESSION_FIXTURES = frozenset({"system"})
MODULE_FIXTURES = frozenset({"quant_system", "stack", "cluster", "one_slot", "gateway"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    started: set[tuple[str, str]] = set()
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        scopes = {(n, "") for n in names & SESSION_FIXTURES}
        params = getattr(getattr(item, "callspec", None), "params", {})
        module = item.nodeid.split("::")[0]
        scopes |= {(n, f"{module}[{params.get(n, '')}]") for n in names & MODULE_FIXTURES}
        if scopes - started and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STARTUP_TIMEOUT_S))
        started |= scopes
