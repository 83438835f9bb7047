"""The executor process: wiring of streams, registry, worker pool, engine and handlers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from services.executor import metrics
from services.executor.api.cancellation import Canceller
from services.executor.api.deadletters import DeadLetters
from services.executor.api.handlers import Handlers
from services.executor.api.submission import Submitter
from services.executor.api.workflows import Workflows
from services.executor.runtime.engine import Engine
from services.executor.runtime.workers import WorkerPool
from services.executor.storage.statuswriter import StatusWriter
from services.executor.storage.store import StatusStore
from services.executor.storage.streams import ensure_all, queue_depth
from services.executor.tasktypes import TaskRegistry, build_registry
from shared import telemetry
from shared.bus import Bus
from shared.contracts.base import DependencyStatus
from shared.logs import swallowed
from shared.settings import Settings
from shared.subjects import Bucket
from shared.tasks import Plugin

log = logging.getLogger(__name__)
DEPTH_INTERVAL_S = 5.0


class ExecutorApp:
    name = "executor"

    def __init__(self, settings: Settings, registry: TaskRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or build_registry(
            settings.executor.plugins, entry_points=settings.executor.entry_points,
            settings=settings)
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.pool = WorkerPool(settings.executor.worker_processes,
                               preload=[m for m in self.registry.modules if m != "__main__"])
        self.engine: Engine | None = None
        self.writer: StatusWriter | None = None
        self._depth: asyncio.Task[None] | None = None
        self._bus: Bus | None = None
        self._started: list[Plugin] = []

    async def start(self, bus: Bus) -> None:
        s = self.settings.executor
        self._bus = bus
        status_kv, workflows_kv = await ensure_all(bus.js, self.settings)
        await self.pool.start()
        store = StatusStore(bus.js, status_kv, Bucket.TASK_STATUS)
        self.writer = writer = StatusWriter(bus.nc, Bucket.TASK_STATUS,
                                            final_ttl_s=s.record_ttl_s)
        await writer.start()
        submitter = Submitter(bus.nc, bus.js, self.registry, store, s)
        workflows = Workflows(bus.nc, bus.js, workflows_kv, submitter, store, writer,
                              final_ttl_s=s.workflow_ttl_s)
        dead = DeadLetters(bus.js, submitter)
        canceller = Canceller(bus.nc, bus.js, store, writer, workflows)
        workflows.cancel_task = canceller.cancel
        handlers = Handlers(self.registry, store, submitter, canceller, dead, workflows,
                            list_window_s=s.list_window_s)
        await bus.serve_operations(handlers.routes())
        await self._start_plugins(bus)
        self.engine = Engine(bus=bus, settings=s, registry=self.registry, writer=writer,
                             store=store, submitter=submitter, dead_letters=dead,
                             workflows=workflows, pool=self.pool, instance=self.instance,
                             tracing=telemetry.recording())
        await self.engine.start()
        self._depth = asyncio.create_task(self._report_depth(bus))
        log.info("executor ready", extra={"types": self.registry.names(),
                                          "concurrency": s.concurrency,
                                          "workers": self.pool.pids()})

    async def _start_plugins(self, bus: Bus) -> None:
        """Plugins' start hooks, then their endpoints; a failing plugin is reported in health
        (``plugins``) and the others carry on."""
        for plugin in self.registry.plugins:
            try:
                if plugin.start is not None:
                    await plugin.start(bus)
                for e in plugin.endpoints:
                    await bus.serve(e.operation, e.handler)
            except Exception as e:
                message = f"plugin {plugin.name} failed to start: {type(e).__name__}: {e}"
                log.exception("plugin failed to start", extra={"plugin": plugin.name})
                self.registry.errors.append(message)
                continue
            self._started.append(plugin)

    async def _report_depth(self, bus: Bus) -> None:
        while True:
            with swallowed(log, "reading the queue depth", level=logging.DEBUG):
                for d in (await queue_depth(bus.js)).priorities:
                    metrics.QUEUE_DEPTH.labels(str(d.priority)).set(d.queued)
            await asyncio.sleep(DEPTH_INTERVAL_S)

    async def stop(self) -> None:
        if self._depth:
            self._depth.cancel()
        if self.engine is not None:
            await self.engine.shutdown(self.settings.executor.shutdown_grace_s)
        if self.writer is not None:
            await self.writer.close()
        for plugin in self._started:
            if plugin.stop is not None:
                try:
                    await plugin.stop()
                except Exception:
                    log.exception("plugin failed to stop", extra={"plugin": plugin.name})
        await self.pool.close()

    async def health(self) -> tuple[dict[str, DependencyStatus], dict[str, object]]:
        alive = len(self.pool.pids())
        deps = {
            "workers": DependencyStatus(ok=alive > 0,
                                        detail=f"{alive}/{self.pool.size} worker processes"),
            "plugins": DependencyStatus(ok=not self.registry.errors,
                                        detail="; ".join(self.registry.errors)[:500]),
        }
        details: dict[str, object] = {
            "types": self.registry.names(), "worker_pids": self.pool.pids(),
            "workers_busy": self.pool.busy, "workers_replaced": self.pool.replaced,
            **(self.engine.stats() if self.engine else {}),
        }
        return deps, details


def create(settings: Settings) -> ExecutorApp:
    return ExecutorApp(settings)
