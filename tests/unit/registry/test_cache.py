"""ModelCache: LRU by digest, TTL, hit/miss statistics, single-flight loads, invalidation by
model events. The registry here is an in-memory stand-in (the real one, with real events, is
exercised in tests/integration/registry/test_cache_events.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.clients.registry_cache import ModelCache
from shared.contracts.registry import ArtifactFormat, ArtifactInfo, RegistryEvent, VersionInfo


class Registry:
    """Versions by ref; counts downloads."""

    def __init__(self) -> None:
        self.versions: dict[str, VersionInfo] = {}
        self.aliases: dict[str, str] = {}
        self.downloads = 0
        self.gets = 0
        self.bus = None

    def add(self, model: str, version: int, digest: str) -> VersionInfo:
        info = VersionInfo(model=model, version=version, created_at=datetime.now(UTC),
                           artifact=ArtifactInfo(bucket="b", object_name=f"o{version}",
                                                 sha256=digest, size_bytes=1,
                                                 format=ArtifactFormat.BINARY))
        self.versions[f"{model}@{version}"] = info
        return info

    async def get(self, ref: str) -> VersionInfo:
        self.gets += 1
        return self.versions[self.aliases.get(ref, ref)]

    async def download(self, ref: str) -> tuple[VersionInfo, bytes]:
        self.downloads += 1
        await asyncio.sleep(0.01)  # not a synchronisation: a download takes a moment
        info = self.versions[ref]
        return info, info.artifact.sha256.encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(kind: str, model: str, alias: str = "", previous_sha256: str = "") -> RegistryEvent:
    return RegistryEvent(id="e", kind=kind, model=model, at=datetime.now(UTC), alias=alias,
                         previous_sha256=previous_sha256)


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    for v, digest in ((1, "d1"), (2, "d2"), (3, "d3")):
        r.add("m", v, digest)
    return r


def make(registry: Registry, clock: Clock, **kw: float) -> ModelCache:
    return ModelCache(registry, loader=lambda data, info: data.decode(),  # type: ignore[arg-type]
                      clock=clock, **kw)  # type: ignore[arg-type]


async def test_hits_misses_and_lru_eviction(registry: Registry) -> None:
    clock = Clock()
    cache = make(registry, clock, max_models=2)
    assert (await cache.get("m@1")).model == "d1"
    assert (await cache.get("m@1")).model == "d1"
    await cache.get("m@2")
    await cache.get("m@1")  # m@1 is now the most recent
    await cache.get("m@3")  # evicts m@2
    await cache.get("m@1")
    await cache.get("m@2")  # reloaded
    s = cache.stats
    assert (s.hits, s.misses, s.loads, s.evictions, s.size) == (3, 4, 4, 2, 2)
    assert registry.downloads == 4
    assert s.hit_ratio == pytest.approx(3 / 7)


async def test_same_digest_is_one_model(registry: Registry) -> None:
    registry.add("m", 4, "d1")  # same bytes as version 1
    cache = make(registry, Clock())
    a, b = await cache.get("m@1"), await cache.get("m@4")
    assert a.model == b.model and registry.downloads == 1 and b.info.version == 4


async def test_ttl_reloads_models_and_reresolves_moving_refs(registry: Registry) -> None:
    clock = Clock()
    cache = make(registry, clock, ttl_s=60, resolve_ttl_s=5)
    registry.aliases["m@production"] = "m@1"
    assert (await cache.get("m@production")).model == "d1"
    registry.aliases["m@production"] = "m@2"  # moved, and we missed the event
    assert (await cache.get("m@production")).model == "d1"  # resolution still trusted
    clock.now += 6
    assert (await cache.get("m@production")).model == "d2"
    await cache.get("m@1")
    gets, downloads = registry.gets, registry.downloads
    clock.now += 100
    await cache.get("m@1")  # pinned: never re-resolved; model expired: reloaded
    assert registry.gets == gets and registry.downloads == downloads + 1
    assert cache.stats.expirations == 1


async def test_alias_event_invalidates_at_once(registry: Registry) -> None:
    cache = make(registry, Clock(), resolve_ttl_s=3600)
    registry.aliases["m@production"] = "m@1"
    await cache.get("m@production")
    registry.aliases["m@production"] = "m@2"
    cache.on_event(event("promote", "m", alias="production", previous_sha256="d1"))
    assert (await cache.get("m@production")).model == "d2"
    s = cache.stats
    assert s.invalidations == 1 and s.size == 2  # the previous model stays warm for rollback
    cache.on_event(event("promote", "other", alias="production"))
    cache.on_event(event("set_alias", "m", alias="staging"))
    assert cache.stats.invalidations == 1  # nothing of ours was stale


async def test_register_event_moves_latest_only(registry: Registry) -> None:
    cache = make(registry, Clock(), resolve_ttl_s=3600)
    registry.aliases["m@latest"] = "m@2"
    await cache.get("m@latest")
    await cache.get("m@1")
    registry.aliases["m@latest"] = "m@3"
    cache.on_event(event("register", "m"))
    assert (await cache.get("m@latest")).model == "d3"
    assert cache.stats.invalidations == 1


async def test_delete_event_drops_the_deleted_model(registry: Registry) -> None:
    cache = make(registry, Clock())
    await cache.get("m@1")
    await cache.get("m@2")
    deleted = RegistryEvent(id="e", kind="delete", model="m", at=datetime.now(UTC), version=1,
                            from_version=1, sha256="d1")
    cache.on_event(deleted)
    assert cache.stats.size == 1 and cache.stats.invalidations == 1


async def test_concurrent_gets_load_once(registry: Registry) -> None:
    cache = make(registry, Clock())
    results = await asyncio.gather(*(cache.get("m@3") for _ in range(10)))
    assert {r.model for r in results} == {"d3"} and registry.downloads == 1


async def test_eviction_by_bytes_counts_what_files_unpack_to() -> None:
    """Issue 14, case 6: a count bound is no bound when one model unpacks to gigabytes."""
    import io
    import zipfile

    def archive(unpacked: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("a.npy", b"\0" * unpacked)  # deflates to a few kilobytes
        return buf.getvalue()

    files = {f"d{n}": archive(n * 1_000_000) for n in (1, 2, 3)}
    registry = Registry()
    for v in (1, 2, 3):
        registry.add("m", v, f"d{v}")

    async def download(ref: str) -> tuple[VersionInfo, bytes]:
        info = registry.versions[ref]
        return info, files[info.artifact.sha256]

    registry.download = download  # type: ignore[method-assign]
    cache = ModelCache(registry, loader=lambda data, info: len(data),  # type: ignore[arg-type]
                       clock=Clock(), max_models=10, max_bytes=4_500_000)
    await cache.get("m@1")
    await cache.get("m@2")
    assert cache.stats.size == 2 and cache.size_bytes == 3_000_000
    await cache.get("m@3")  # 6 MB would be held: the oldest go until it fits
    assert cache.stats.size == 1 and cache.size_bytes == 3_000_000
    assert all(len(f) < 20_000 for f in files.values())
