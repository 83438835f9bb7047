"""The gateway process: uvicorn serving the app, on the same event loop as its NATS bus."""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from litestar import Litestar

from services.gateway.app import create_app
from services.gateway.auth.runtime import Auth
from services.gateway.http_server import GatheringHttpToolsProtocol, Server
from services.gateway.tracing import tracing_middleware
from shared.bus import Bus
from shared.contracts.base import DependencyStatus
from shared.settings import Settings

log = logging.getLogger(__name__)


class GatewayApp:
    name = "gateway"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.auth: Auth | None = None
        self.app: Litestar | None = None  # the routed app, for introspection (route table)

    async def start(self, bus: Bus) -> None:
        gw = self.settings.gateway
        # Before the app: the first admin exists (and its key is on disk) once we listen.
        self.auth = await Auth.open(self.settings, nc=bus.nc)
        try:
            await self._serve(bus, self.auth)
        except BaseException:
            await self.auth.close()
            self.auth = None
            raise
        log.info("gateway listening", extra={"url": f"http://{gw.host}:{gw.port}"})

    async def _serve(self, bus: Bus, auth: Auth) -> None:
        gw = self.settings.gateway
        # Outermost, so even a 404 from the router carries a correlation id and a span.
        self.app = create_app(self.settings, bus, auth)
        app = tracing_middleware(self.app)
        config = uvicorn.Config(
            app, host=gw.host, port=gw.port, log_config=None, access_log=False, lifespan="on",
            http=GatheringHttpToolsProtocol,
            # No "server: uvicorn" banner: it tells a scanner what to try, and costs a header.
            server_header=False,
            timeout_graceful_shutdown=5,
            # Client addresses feed per-IP rate limits: never take them from a header.
            proxy_headers=False,
        )
        self.server = Server(config)
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # surfaces the bind error
                raise RuntimeError("gateway stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.server and self.task:
            self.server.should_exit = True
            await self.task
        if self.auth:
            await self.auth.close()
            self.auth = None

    async def health(self) -> tuple[dict[str, DependencyStatus], dict[str, object]]:
        up = bool(self.server and self.server.started and not self.server.should_exit)
        return {"http": DependencyStatus(ok=up)}, {"port": self.settings.gateway.port}


def create(settings: Settings) -> GatewayApp:
    return GatewayApp(settings)
