"""A live process's ModelCache hot-swaps when production is promoted or rolled back: the
registry's event reaches it over NATS and the next ``get`` loads the new model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import Ridge

from shared.clients.registry import RegistryClient
from shared.clients.registry_cache import ModelCache
from shared.contracts.registry import VersionSpec
from tests.support import eventually

X = np.random.default_rng(1).normal(size=(40, 2))


async def _until(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    await eventually(predicate, timeout_s=timeout_s)


async def test_promotion_event_swaps_the_cached_model(client: RegistryClient,
                                                      unique: str) -> None:
    model = f"live-{unique}"
    a = Ridge().fit(X, X @ np.array([1.0, 0.0]))
    b = Ridge().fit(X, X @ np.array([0.0, 1.0]))
    v1 = await client.register_model(model, a, VersionSpec(metrics={"rmse": 0.2}))
    v2 = await client.register_model(model, b, VersionSpec(metrics={"rmse": 0.1}))
    await client.promote(model, v1.version)
    cache = ModelCache(client, resolve_ttl_s=3600)  # only an event can move it
    await cache.start()
    try:
        first = await cache.get(f"{model}@production")
        again = await cache.get(f"{model}@production")
        np.testing.assert_allclose(first.model.predict(X), a.predict(X))
        assert again.model is first.model and first.info.version == 1
        await client.promote(model, v2.version, reason="lower rmse")
        await _until(lambda: cache.stats.invalidations >= 1)
        swapped = await cache.get(f"{model}@production")
        np.testing.assert_allclose(swapped.model.predict(X), b.predict(X))
        await client.rollback(model)
        await _until(lambda: cache.stats.invalidations >= 2)
        back = await cache.get(f"{model}@production")
        assert back.info.version == 1 and back.model is first.model  # still warm: no reload
        s = cache.stats
        assert (s.hits, s.misses, s.loads) == (2, 2, 2)
    finally:
        await cache.stop()
