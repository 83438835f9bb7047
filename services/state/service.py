"""Wiring of the state service: ``create(settings)`` is what ``quantops serve state`` runs.

Any number of these processes may run at once: they share the queue group ``state`` and the
JetStream bucket, which is the only source of truth; each keeps an index fed by its own
ordered consumer (see ``shared.kvfeed`` for when it may answer reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.state import metrics, migrations
from services.state.handlers import Handlers, counted
from services.state.index import Index
from services.state.namespaces import Namespaces
from services.state.reads import Reader
from services.state.snapshots import Snapshots
from services.state.store import KvStore, Stored
from services.state.writes import Writer
from shared.bus import Bus
from shared.contracts.base import DependencyStatus
from shared.kvfeed import KvFeed
from shared.settings import Settings
from shared.streams import ensure_stream, staging_config
from shared.subjects import Bucket

log = logging.getLogger(__name__)

#: How long start-up waits for the index to catch up before serving anyway (reads go to
#: JetStream until it has).
CATCH_UP_S = 10.0
SWEEP_S = 1.0


class StateApp:
    """Args:
    settings: the process's settings (``settings.state`` for limits and cache).
    bucket: the KV bucket (tests and benchmarks may isolate themselves with their own).
    """

    name = "state"

    def __init__(self, settings: Settings, *, bucket: str = Bucket.STATE) -> None:
        self.settings = settings
        self.bucket = bucket
        self.store: KvStore | None = None
        self.index = Index(cache_max_bytes=settings.state.cache_max_bytes)
        self.feed: KvFeed[Stored] | None = None
        self.namespaces: Namespaces | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reported: set[str] = set()

    async def start(self, bus: Bus) -> None:
        loaded = migrations.load(self.settings.state.migration_modules)
        if loaded:
            log.info("migrations loaded", extra={"modules": loaded})
        cfg = self.settings.state
        store = self.store = KvStore(bus.nc, bucket=self.bucket, history=cfg.history,
                                       replicas=self.settings.stream_replicas)
        await store.wait_ready(timeout_s=30)
        # Snapshot uploads are staged there (``snapshot_import``).
        await ensure_stream(bus.js, staging_config(self.settings), update=False)
        feed = self.feed = KvFeed(store.nc, store.stream, store.prefix, self.index.apply,
                                  entry=Stored, clear=self.index.clear,
                                  timeout_s=store.timeout_s)
        await feed.start()
        if not await feed.wait_ready(CATCH_UP_S):
            log.warning("index not caught up yet; reads go to JetStream until it is")
        namespaces = self.namespaces = Namespaces(store, self.index, feed, cfg)
        snapshots = Snapshots(store, self.index, namespaces, cfg)
        handlers = Handlers(Reader(store, self.index, feed, namespaces, cfg),
                            Writer(store, self.index, feed, namespaces, cfg), namespaces, snapshots)
        await bus.serve_operations(handlers.routes(), middlewares=[counted])
        self._tasks = [asyncio.create_task(self._sweep()),
                       asyncio.create_task(snapshots.resume_forever())]

    async def _sweep(self) -> None:
        """Expired keys leave the index (and usage) on time; metrics and usage gauges
        follow."""
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.time()
            self.index.sweep(now)
            metrics.flush()
            known = set(self.index.known_namespaces())
            for ns in known | self._reported:  # a namespace that emptied reports 0, once
                metrics.usage(ns, *self.index.usage(ns, now))
            self._reported = known

    async def stop(self) -> None:
        metrics.flush()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.feed is not None:
            await self.feed.stop()

    async def health(self) -> tuple[dict[str, DependencyStatus], dict[str, object]]:
        deps: dict[str, DependencyStatus] = {}
        revision = 0
        if self.store is not None:
            try:
                revision = await asyncio.wait_for(self.store.last_sequence(), timeout=2.0)
                deps["jetstream"] = DependencyStatus(ok=True, detail=self.store.stream)
            except Exception as e:
                deps["jetstream"] = DependencyStatus(ok=False, detail=str(e) or type(e).__name__)
        feed = self.feed
        details: dict[str, object] = {
            "bucket": str(self.bucket),
            "revision": revision,
            "cache": {"ready": bool(feed and feed.ready), "live": bool(feed and feed.live()),
                      "applied_revision": feed.applied if feed else 0,
                      "resets": feed.resets if feed else 0,
                      "cached_bytes": self.index.cached_bytes},
            "namespaces": {n.namespace: {"keys": n.keys, "bytes": n.bytes,
                                         "max_total_bytes": n.max_total_bytes}
                           for n in (self.namespaces.all() if self.namespaces else [])},
        }
        return deps, details


def create(settings: Settings) -> StateApp:
    return StateApp(settings)
