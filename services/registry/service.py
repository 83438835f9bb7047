"""The registry process: open the catalog, reconcile it with the object store, then serve.

Start-up order matters: migrations, bucket and events stream, the orphan sweep, the outbox,
and only then the subjects, so no request ever sees a half-reconciled registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from nats.aio.subscription import Subscription

from services.registry.aliases import Aliases
from services.registry.artifacts import ArtifactStore
from services.registry.catalog import Catalog
from services.registry.compare import MetricDirections, parse_overrides
from services.registry.datasets import Datasets
from services.registry.events import Publisher, ensure_events_stream
from services.registry.handlers import DatasetHandlers, Handlers
from services.registry.orphans import OrphanRemover
from services.registry.reads import Reads
from services.registry.registration import Registrar
from services.registry.retention import Retention
from shared import errors
from shared.bus import Bus, Context, Handler
from shared.contracts.base import DependencyStatus
from shared.logs import swallowed
from shared.operations import Operation
from shared.settings import Settings
from shared.streams import ensure_stream, staging_config
from shared.subjects import Bucket

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


class RegistryApp:
    """The registry service.

    Args:
        settings: ``data_dir`` holds ``registry/catalog.db``; ``settings.registry`` the limits.
    """

    name = "registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.data_dir / "registry" / "catalog.db")
        self.artifacts: ArtifactStore | None = None
        self.publisher: Publisher | None = None
        self.orphans: OrphanRemover | None = None
        self.reads: Reads | None = None
        self._subs: list[Subscription] = []
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._periodic: asyncio.Task[None] | None = None
        self.datasets: Datasets | None = None
        self._datasets_task: asyncio.Task[None] | None = None

    async def start(self, bus: Bus) -> None:
        cfg = self.settings.registry
        await self.catalog.open()
        self.artifacts = artifacts = ArtifactStore(
            bus.nc, bus.js, Bucket.ARTIFACTS.value, replicas=self.settings.stream_replicas)
        await artifacts.open()
        await ensure_events_stream(bus.js, self.settings)
        await ensure_stream(bus.js, staging_config(self.settings), update=True)
        self.publisher = publisher = Publisher(self.catalog, bus.js)
        self.orphans = OrphanRemover(self.catalog, artifacts, publisher,
                                     upload_ttl_s=cfg.upload_ttl_s)
        await self.orphans.run(startup=True)
        await publisher.flush()
        directions = MetricDirections(parse_overrides(cfg.metric_directions))
        self.reads = Reads(self.catalog, bucket=artifacts.bucket, directions=directions)
        handlers = Handlers(Registrar(self.catalog, artifacts, publisher, cfg), self.reads,
                            Aliases(self.catalog, publisher),
                            Retention(self.catalog, artifacts, publisher,
                                      keep_default=cfg.keep_versions))
        self._subs += await bus.serve_operations(handlers.routes(), middlewares=[self._track])
        await self._start_datasets(bus)
        self._periodic = asyncio.create_task(self._maintain(cfg.sweep_interval_s))
        log.info("registry ready", extra={"catalog": str(self.catalog.path),
                                          "bucket": artifacts.bucket})

    async def _start_datasets(self, bus: Bus) -> None:
        """Datasets (docs/quant.md): their bucket, the start-up sweep, the subjects, then the
        demo prices and a periodic sweep in the background."""
        cfg = self.settings.registry
        store = ArtifactStore(bus.nc, bus.js, Bucket.DATASETS.value,
                              replicas=self.settings.stream_replicas)
        await store.open()
        assert self.publisher is not None
        self.datasets = datasets = Datasets(
            self.catalog, store, self.publisher, self.settings.quant,
            chunk_bytes=cfg.chunk_bytes, upload_ttl_s=cfg.upload_ttl_s)
        await datasets.sweep(startup=True)
        self._subs += await bus.serve_operations(DatasetHandlers(datasets).routes(),
                                                 middlewares=[self._track])
        self._datasets_task = asyncio.create_task(self._maintain_datasets(cfg.sweep_interval_s))

    async def _maintain_datasets(self, interval_s: float) -> None:
        assert self.datasets is not None
        if self.settings.quant.seed_demo:
            try:
                await self.datasets.seed_if_missing()
            except Exception:  # the seed_demo subject can still do it later
                log.exception("could not register the demo dataset")
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.datasets.sweep(startup=False)
            except Exception:  # a failed round is retried next interval
                log.exception("dataset maintenance failed")

    def _track(self, handler: Handler, op: Operation) -> Handler:
        """Middleware: count requests in flight so stop() closes the catalog only after they
        finish."""
        async def tracked(request: Any, ctx: Context) -> Any:
            self._inflight += 1
            self._idle.clear()
            try:
                return await handler(request, ctx)
            finally:
                self._inflight -= 1
                if not self._inflight:
                    self._idle.set()

        return tracked

    async def _maintain(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                assert self.orphans is not None and self.publisher is not None
                await self.orphans.run(startup=False)
                await self.publisher.flush()
            except Exception:  # a failed round is retried next interval
                log.exception("registry maintenance failed")

    async def stop(self) -> None:
        for task in (self._periodic, self._datasets_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for sub in self._subs:
            with swallowed(log, "unsubscribing", level=logging.DEBUG):
                await sub.unsubscribe()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), STOP_GRACE_S)
        await self.catalog.close()

    async def health(self) -> tuple[dict[str, DependencyStatus], dict[str, object]]:
        deps: dict[str, DependencyStatus] = {}
        details: dict[str, object] = {}
        try:
            assert self.reads is not None
            details |= await self.reads.counts()
            deps["catalog"] = DependencyStatus(ok=True)
        except Exception as e:
            deps["catalog"] = DependencyStatus(ok=False, detail=repr(e)[:200])
        try:
            assert self.artifacts is not None
            details["bucket_bytes"] = await self.artifacts.stored_bytes()
            deps["object_store"] = DependencyStatus(ok=True)
        except (errors.QuantopsError, AssertionError) as e:
            deps["object_store"] = DependencyStatus(ok=False, detail=repr(e)[:200])
        if self.publisher is not None:
            with swallowed(log, "counting pending events"):
                details["events_pending"] = await self.publisher.pending()
        if self.orphans is not None and self.orphans.last is not None:
            last = self.orphans.last
            details["orphan_check"] = {"deleted_objects": len(last.deleted_objects),
                                       "removed_versions": len(last.removed_versions),
                                       "refused": last.refused}
        return deps, details


def create(settings: Settings) -> RegistryApp:
    return RegistryApp(settings)
