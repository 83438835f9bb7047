"""Models as the predict path sees them: loaded, with their recipe, swapped without a gap.

``ModelCache`` (LRU + TTL by artifact digest) does the loading; on top of it each ref that is
being served keeps its current model. When a promotion event (or the resolve TTL) says a moving
ref may point elsewhere, the new version is loaded *in the background* while requests keep being
answered by the current one; the swap is one dict assignment. No request waits for a load
except the very first of a ref, and none fails because a swap is under way: if the reload
fails, the old model keeps serving and the reload is retried on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quant.estimators import Model, load_model
from quant.recipe import Recipe, from_hyperparameters
from shared.clients.registry import RegistryClient
from shared.clients.registry_cache import ModelCache
from shared.contracts.registry import RegistryEvent, VersionInfo, split_ref
from shared.errors import Forbidden, InvalidRequest, NotFound
from shared.logs import swallowed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One ref's current model: its version, the fitted estimator and its recipe."""

    info: VersionInfo
    model: Model
    recipe: Recipe
    loaded_at: float
    checked_at: float


def _load(data: bytes, info: VersionInfo) -> Any:
    """The cache's loader: skops with the quant allow-list, never pickle."""
    try:
        return load_model(data)
    except ValueError as e:
        raise Forbidden(f"{info.ref}: {e}", details={"model": info.ref}) from e


class LiveModels:
    """Args:
    client: registry client used for resolving refs and downloading artifacts.
    max_models, ttl_s: the model cache's size and time to live.
    max_bytes: the model cache's estimated memory (``ModelCache``).
    resolve_ttl_s: how long a moving ref is served before its resolution is checked again.
    """

    def __init__(self, client: RegistryClient, *, max_models: int, ttl_s: float,
                 resolve_ttl_s: float, max_bytes: int = 1 << 30,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = ModelCache(client, max_models=max_models, max_bytes=max_bytes, ttl_s=ttl_s,
                                resolve_ttl_s=resolve_ttl_s, loader=_load, clock=clock)
        self.ttl_s, self.resolve_ttl_s, self.clock = ttl_s, resolve_ttl_s, clock
        self.max_refs = max(4 * max_models, 16)
        self._current: OrderedDict[str, Served] = OrderedDict()
        self._recipes: dict[str, Recipe] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self.swaps = 0

    async def get(self, ref: str) -> Served:
        served = self._current.get(ref)
        now = self.clock()
        if served is None or now - served.loaded_at > self.ttl_s:
            return await self._load(ref)
        self._current.move_to_end(ref)
        if not _pinned(ref) and now - served.checked_at > self.resolve_ttl_s:
            self.refresh_soon(ref)
        return served

    async def _load(self, ref: str) -> Served:
        loaded = await self.cache.get(ref)
        digest = loaded.info.artifact.sha256
        recipe = self._recipes.get(digest)
        if recipe is None:
            try:
                recipe = from_hyperparameters(loaded.info.spec.hyperparameters)
            except ValueError as e:
                raise InvalidRequest(f"{loaded.info.ref}: {e}",
                                     details={"model": loaded.info.ref}) from e
            self._recipes[digest] = recipe
        now = self.clock()
        previous = self._current.get(ref)
        if previous is not None and previous.info.artifact.sha256 != digest:
            self.swaps += 1
            log.info("model swapped", extra={"ref": ref, "from": previous.info.ref,
                                             "to": loaded.info.ref})
        served = Served(info=loaded.info, model=loaded.model, recipe=recipe,
                        loaded_at=loaded.loaded_at, checked_at=now)
        self._current[ref] = served
        self._current.move_to_end(ref)
        while len(self._current) > self.max_refs:
            self._current.popitem(last=False)
        return served

    def refresh_soon(self, ref: str) -> None:
        """Load what ``ref`` names now, in the background; keep serving the current model."""
        if ref in self._refreshing:
            return
        task = asyncio.get_running_loop().create_task(self._refresh(ref))
        self._refreshing[ref] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(ref, None))

    async def _refresh(self, ref: str) -> None:
        try:
            await self._load(ref)
        except NotFound:
            self._current.pop(ref, None)  # the alias or version is gone: say so next time
        except Exception:
            log.warning("model reload failed; the current one keeps serving",
                        extra={"ref": ref}, exc_info=True)
            served = self._current.get(ref)
            if served is not None:  # retry after another resolve TTL, not on every request
                self._current[ref] = Served(info=served.info, model=served.model,
                                            recipe=served.recipe, loaded_at=served.loaded_at,
                                            checked_at=self.clock())

    def on_event(self, event: RegistryEvent) -> None:
        """A registry event: forget stale resolutions, reload the refs of that model."""
        self.cache.on_event(event)
        for ref in [r for r in self._current if split_ref(r)[0] == event.model]:
            if not _pinned(ref):
                self.refresh_soon(ref)

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError), \
                    swallowed(log, "a model refresh", level=logging.DEBUG):
                await task

    def stats(self) -> dict[str, object]:
        s = self.cache.stats
        return {"served_refs": len(self._current), "models_loaded": s.size, "loads": s.loads,
                "cache_hits": s.hits, "cache_misses": s.misses, "swaps": self.swaps}


def _pinned(ref: str) -> bool:
    return split_ref(ref)[1].isdigit()
