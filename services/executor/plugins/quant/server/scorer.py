"""The predict path: which model, which features, which predictions; optionally written to the
state service as signals.

Latest features of a dataset are cached by (digest, feature set, end): a digest names immutable
bytes, so the cache is never stale; a dataset *name* is re-resolved when an
``events.dataset.named`` event says it moved, or after the resolve TTL. A request on a cached
model and dataset therefore costs two dict lookups and one ``predict`` on a few rows. Features
of bars sent in a request are computed in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import pandas as pd

from quant.scoring import LatestFeatures, latest_features, min_bars, score
from services.executor.plugins.quant.server.live import LiveModels, Served
from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.datasets import DIGEST_PREFIX, DatasetEvent, parse_ref
from shared.contracts.quant import Bar, Prediction, PredictReply, PredictRequest
from shared.errors import InvalidRequest
from shared.settings import QuantSettings, ttl_or_none

K = TypeVar("K")
V = TypeVar("V")
MAX_LATEST = 256
MAX_FRAMES = 4
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_=/-]")


class _Memo:
    """Values by key, computed once however many callers ask at the same time; LRU-bounded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: OrderedDict[Any, Any] = OrderedDict()
        self.pending: dict[Any, asyncio.Future[Any]] = {}

    async def get(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        if key in self.values:
            self.values.move_to_end(key)
            cached: V = self.values[key]
            return cached
        future = self.pending.get(key)
        if future is None:
            future = asyncio.ensure_future(make())
            self.pending[key] = future
            try:
                value: V = await future
            finally:
                self.pending.pop(key, None)
            self.values[key] = value
            while len(self.values) > self.size:
                self.values.popitem(last=False)
            return value
        shared: V = await asyncio.shield(future)
        return shared


class Scorer:
    """Args:
    bus: the connection requests are made on.
    settings: cache sizes, TTLs and the signals namespace.
    """

    def __init__(self, bus: Bus, settings: QuantSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.models = LiveModels(RegistryClient(bus), max_models=settings.model_cache_size,
                                 max_bytes=settings.model_cache_bytes,
                                 ttl_s=settings.model_cache_ttl_s,
                                 resolve_ttl_s=settings.resolve_ttl_s, clock=clock)
        self.datasets = DatasetClient(bus)
        self.state = StateClient(bus)
        self._names: dict[str, tuple[str, float]] = {}
        self._frames = _Memo(MAX_FRAMES)
        self._latest = _Memo(MAX_LATEST)

    async def predict(self, req: PredictRequest, *, headers: dict[str, str] | None = None
                      ) -> PredictReply:
        served = await self.models.get(req.model)
        if req.bars:
            latest, digest = await self._from_bars(req.bars, served, req.end), ""
        else:
            digest = await self._digest(req.dataset or _trained_on(served))
            latest = await self._from_dataset(digest, served, req.end)
        try:
            scored = score(served.model, served.recipe, latest, req.symbols)
        except ValueError as e:
            raise InvalidRequest(str(e), details={"model": served.info.ref}) from e
        predictions = [Prediction(symbol=s.symbol, timestamp=s.timestamp.replace(tzinfo=UTC),
                                  prediction=s.prediction, signal=s.signal,
                                  position=s.position) for s in scored]
        reply = PredictReply(model=served.info.model, version=served.info.version,
                             sha256=served.info.artifact.sha256,
                             kind=served.recipe.target.kind,
                             horizon=served.recipe.target.horizon, predictions=predictions,
                             dataset_sha256=digest)
        if req.write_signals:
            written = await self._write_signals(reply, headers)
            reply = msgspec.structs.replace(reply, signals_written=written)
        return reply

    # --- datasets -------------------------------------------------------------------------

    async def _digest(self, ref: str) -> str:
        name, digest = parse_ref(ref)
        if digest:
            return digest
        cached = self._names.get(name)
        if cached is not None and self.clock() - cached[1] <= self.settings.resolve_ttl_s:
            return cached[0]
        info = await self.datasets.get(name)
        self._names[name] = (info.sha256, self.clock())
        return info.sha256

    def on_dataset_event(self, event: DatasetEvent) -> None:
        self._names.pop(event.name, None)

    async def _frame(self, digest: str) -> pd.DataFrame:
        async def make() -> pd.DataFrame:
            from quant.data import read_ohlcv

            info, data = await self.datasets.download(DIGEST_PREFIX + digest)
            return await asyncio.to_thread(read_ohlcv, data, info.format, sort=True)

        return await self._frames.get(digest, make)

    async def _from_dataset(self, digest: str, served: Served, end: datetime | None
                            ) -> LatestFeatures:
        specs = served.recipe.features
        key = (digest, tuple(s.stem() for s in specs), end.isoformat() if end else "")

        async def make() -> LatestFeatures:
            frame = await self._frame(digest)
            try:
                return await asyncio.to_thread(latest_features, frame, specs, end)
            except ValueError as e:
                raise InvalidRequest(str(e)) from e

        return await self._latest.get(key, make)

    async def _from_bars(self, bars: list[Bar], served: Served, end: datetime | None
                         ) -> LatestFeatures:
        return await asyncio.to_thread(_bars_features, bars, served, end)

    # --- signals --------------------------------------------------------------------------

    async def _write_signals(self, reply: PredictReply, headers: dict[str, str] | None) -> int:
        """Written with the caller's bus token: signals are the caller's writes, not ours."""
        ns, at = self.settings.signals_namespace, time.time()
        ttl_s = ttl_or_none(self.settings.signals_ttl_s)
        state = StateClient(self.state.bus, headers=headers)
        puts = [state.put(ns, f"{_key_part(reply.model)}.{_key_part(p.symbol)}", {
            "model": f"{reply.model}@{reply.version}", "sha256": reply.sha256,
            "symbol": p.symbol, "timestamp": p.timestamp, "prediction": p.prediction,
            "signal": p.signal, "position": p.position, "kind": reply.kind,
            "horizon": reply.horizon, "at": at}, ttl_s=ttl_s) for p in reply.predictions]
        await asyncio.gather(*puts)
        return len(puts)


def _trained_on(served: Served) -> str:
    """A model's default data: the dataset *name* it was trained on (newer bars uploaded under
    the name are used), else the exact bytes (its lineage digest)."""
    name = served.info.spec.tags.get("dataset", "")
    if name and not name.startswith(DIGEST_PREFIX):
        return name
    digest = served.info.spec.lineage.data_sha256
    if not digest:
        raise InvalidRequest(f"{served.info.ref} records no training dataset: send a dataset "
                             "or bars")
    return DIGEST_PREFIX + digest


def _bars_features(bars: list[Bar], served: Served, end: datetime | None) -> LatestFeatures:
    from quant.data import normalise_ohlcv
    from quant.validation import validate_ohlcv
    from services.executor.plugins.quant.tasks.work import describe_issues

    try:
        frame = normalise_ohlcv(pd.DataFrame(msgspec.to_builtins(bars)))
    except ValueError as e:
        raise InvalidRequest(f"request's bars: {e}", details={"field": "bars"}) from e
    report = validate_ohlcv(frame)
    if report.errors:
        raise InvalidRequest(describe_issues(report, "bars").replace("uploaded file",
                                                                      "request's bars"))
    needed = min_bars(served.recipe)
    short = sorted(s for s, n in frame.groupby("symbol").size().items() if n < needed)
    if short:
        raise InvalidRequest(f"{served.info.ref} needs at least {needed} bars per symbol; "
                             f"too few for {short}", details={"min_bars": needed})
    try:
        return latest_features(frame, served.recipe.features, end)
    except ValueError as e:
        raise InvalidRequest(str(e)) from e


def _key_part(text: str) -> str:
    return _KEY_UNSAFE.sub("_", text) or "_"
