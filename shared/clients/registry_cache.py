"""An LRU cache with TTL of loaded (deserialized) models, for the predict path.

Models are keyed by their artifact's SHA-256: two refs naming the same bytes share one loaded
model. Refs are resolved through the registry: a pinned ref (``name@7``) names the same bytes
forever; a moving ref (``name@production``, ``name@latest``) is re-resolved after
``resolve_ttl_s``, and at once when an ``events.model.*`` event says it moved, so a live process
hot-swaps to a promoted model on its next ``get``.

    cache = ModelCache(client, max_models=4)
    await cache.start()                       # listen to model events
    model = (await cache.get("eurusd-dir@production")).model
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.bus import Bus, flush
from shared.clients.registry_formats import load_artifact
from shared.contracts.registry import LATEST, RegistryEvent, VersionInfo, split_ref
from shared.logs import swallowed
from shared.subjects import MODEL_EVENTS

log = logging.getLogger(__name__)

Loader = Callable[[bytes, VersionInfo], Any]
_event_decoder = msgspec.json.Decoder(RegistryEvent)


class RegistryReader(Protocol):
    """What the cache needs from ``RegistryClient``."""

    bus: Bus

    async def get(self, ref: str) -> VersionInfo: ...

    async def download(self, ref: str) -> tuple[VersionInfo, bytes]: ...


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    loads: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    size: int = 0

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True)
class LoadedModel:
    info: VersionInfo
    model: Any
    loaded_at: float
    size_bytes: int = 0


def unpacked_bytes(data: bytes) -> int:
    """A loaded model's memory, estimated before loading: what its file unpacks to (a zip
    archive such as skops: the sum of its members' declared sizes), else the file's size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return max(len(data), sum(i.file_size for i in archive.infolist()))
    except (zipfile.BadZipFile, ValueError):
        return len(data)


class ModelCache:
    """Loaded models by digest, LRU-evicted beyond ``max_models`` or ``max_bytes``, reloaded
    after ``ttl_s``.

    Args:
        client: a ``RegistryClient`` (anything with ``get``, ``download`` and ``bus``).
        max_models: models kept in memory.
        max_bytes: their total estimated memory (``unpacked_bytes``); the newest model stays
            even if it alone is larger.
        ttl_s: a loaded model is dropped this long after loading.
        resolve_ttl_s: how long a moving ref's resolution is trusted without an event.
        allow_pickle, trusted: passed to ``load_artifact`` by the default loader.
        loader: ``(bytes, VersionInfo) -> model``, run in a thread; default: ``load_artifact``.
        clock: monotonic seconds (tests move it).
    """

    def __init__(self, client: RegistryReader, *, max_models: int = 8,
                 max_bytes: int = 1 << 30, ttl_s: float = 3600.0,
                 resolve_ttl_s: float = 30.0, allow_pickle: bool = False,
                 trusted: Iterable[str] = (), loader: Loader | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.max_models, self.ttl_s, self.resolve_ttl_s = max_models, ttl_s, resolve_ttl_s
        self.max_bytes = max_bytes
        trusted = tuple(trusted)
        self.loader: Loader = loader or (lambda data, info: load_artifact(
            data, info.artifact.format, allow_pickle=allow_pickle, trusted=trusted))
        self.clock = clock
        self._stats = CacheStats()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._refs: dict[str, tuple[VersionInfo, float]] = {}
        self._loading: dict[str, asyncio.Future[LoadedModel]] = {}
        self._sub: Subscription | None = None

    @property
    def stats(self) -> CacheStats:
        self._stats.size = len(self._models)
        return CacheStats(**vars(self._stats))

    async def start(self) -> None:
        """Listen to model events so moved aliases are re-resolved at once."""
        self._sub = await self.client.bus.nc.subscribe(MODEL_EVENTS, cb=self._on_msg)
        await flush(self.client.bus.nc)

    async def stop(self) -> None:
        if self._sub is not None:
            with swallowed(log, "unsubscribing the cache's events", level=logging.DEBUG):
                await self._sub.unsubscribe()
            self._sub = None

    async def get(self, ref: str) -> LoadedModel:
        info = await self._resolve(ref)
        digest = info.artifact.sha256
        entry = self._models.get(digest)
        if entry is not None and self.clock() - entry.loaded_at > self.ttl_s:
            del self._models[digest]
            self._stats.expirations += 1
            entry = None
        if entry is not None:
            self._models.move_to_end(digest)
            self._stats.hits += 1
            return LoadedModel(info=info, model=entry.model, loaded_at=entry.loaded_at)
        self._stats.misses += 1
        pending = self._loading.get(digest)
        if pending is None:  # one load per digest, however many callers wait for it
            pending = asyncio.ensure_future(self._load(info))
            self._loading[digest] = pending
            pending.add_done_callback(lambda _: self._loading.pop(digest, None))
        loaded = await asyncio.shield(pending)
        return LoadedModel(info=info, model=loaded.model, loaded_at=loaded.loaded_at)

    async def _resolve(self, ref: str) -> VersionInfo:
        cached = self._refs.get(ref)
        if cached is not None and (_pinned(ref) or
                                   self.clock() - cached[1] <= self.resolve_ttl_s):
            return cached[0]
        info = await self.client.get(ref)
        self._refs[ref] = (info, self.clock())
        return info

    async def _load(self, info: VersionInfo) -> LoadedModel:
        _, data = await self.client.download(info.ref)
        model = await asyncio.to_thread(self.loader, data, info)
        self._stats.loads += 1
        loaded = LoadedModel(info=info, model=model, loaded_at=self.clock(),
                             size_bytes=unpacked_bytes(data))
        self._models[info.artifact.sha256] = loaded
        while len(self._models) > 1 and (len(self._models) > self.max_models
                                         or self.size_bytes > self.max_bytes):
            self._models.popitem(last=False)
            self._stats.evictions += 1
        return loaded

    @property
    def size_bytes(self) -> int:
        """The estimated memory of the loaded models."""
        return sum(m.size_bytes for m in self._models.values())

    async def _on_msg(self, msg: Msg) -> None:
        try:
            self.on_event(_event_decoder.decode(msg.data))
        except msgspec.DecodeError:
            log.warning("unreadable model event", extra={"subject": msg.subject})

    def on_event(self, event: RegistryEvent) -> None:
        """Forget the resolutions the event makes stale. The model an alias moved away from
        stays loaded (LRU decides): a rollback to it is then instant. A deleted version's
        model is dropped unless another cached ref still resolves to its bytes."""
        stale = [ref for ref in self._refs if self._stale(ref, event)]
        for ref in stale:
            del self._refs[ref]
        self._stats.invalidations += len(stale)
        gone = event.sha256 if not event.alias and event.kind != "register" else ""
        if gone in self._models and not any(
                info.artifact.sha256 == gone for info, _ in self._refs.values()):
            del self._models[gone]

    def invalidate(self, model: str) -> None:
        """Drop every resolution of ``model`` (e.g. after an outage in which events were lost)."""
        for ref in [r for r in self._refs if split_ref(r)[0] == model]:
            del self._refs[ref]
            self._stats.invalidations += 1

    @staticmethod
    def _stale(ref: str, event: RegistryEvent) -> bool:
        name, selector = split_ref(ref)
        if name != event.model:
            return False
        if event.alias:
            return selector == event.alias
        if event.kind == "register":
            return selector == LATEST
        # A deletion: "latest" may have moved, the pinned version is gone, and an orphan
        # removal also removed the aliases that pointed to it.
        return not selector.isdigit() or selector == str(event.version)


def _pinned(ref: str) -> bool:
    return split_ref(ref)[1].isdigit()
