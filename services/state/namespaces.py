"""Namespaces: their declared configuration, effective limits, usage, and cleanup of old keys.

A namespace's configuration is a record of the bucket (``_ns.<namespace>``), so every replica
sees the same one through its feed. ``max_value_bytes`` is exact. ``max_total_bytes`` is checked
against the replica's index, which lags JetStream by the feed's latency (well under a
millisecond normally): writes admitted at the same instant, by any replica, may together
overshoot it by what is in flight. It is a quota, not a hard reservation.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from services.state import migrations, names
from services.state.index import Index
from services.state.store import EXPECTED_LAST, KvStore, Stored
from shared.contracts.state import (
    CleanupReply,
    NamespaceConfig,
    NamespaceInfo,
    StoredHeader,
)
from shared.errors import InvalidRequest, RevisionConflict
from shared.kvfeed import KvFeed
from shared.settings import StateSettings

_config_decoder = msgspec.json.Decoder(NamespaceConfig)
DEFAULT = NamespaceConfig()
TOMBSTONE = {StoredHeader.KV_OPERATION.value: "DEL"}
#: Concurrent deletes one cleanup keeps in flight.
CLEANUP_PARALLEL = 32


class Namespaces:
    """Args:
    store, index, feed: the bucket, this replica's view of it, and how fresh that view is.
    settings: default limits.
    """

    def __init__(self, store: KvStore, index: Index, feed: KvFeed[Stored], settings: StateSettings
                 ) -> None:
        self.store = store
        self.index = index
        self.feed = feed
        self.settings = settings

    async def config(self, ns: str, min_revision: int | None = None) -> NamespaceConfig:
        """The namespace's configuration, from the index when it is fresh for the caller."""
        if self.feed.fresh(min_revision or 0):
            return self.index.config(ns) or DEFAULT
        return await self.stored_config(ns)

    async def stored_config(self, ns: str) -> NamespaceConfig:
        stored = await self.store.last(names.config_item(ns))
        if stored is None or stored.removed:
            return DEFAULT
        return _config_decoder.decode(stored.data)

    def limits(self, config: NamespaceConfig) -> tuple[int, int]:
        """Effective (max_value_bytes, max_total_bytes)."""
        return (config.max_value_bytes or self.settings.max_value_bytes,
                config.max_total_bytes or self.settings.max_namespace_bytes)

    async def configure(self, ns: str, config: NamespaceConfig) -> NamespaceInfo:
        names.namespace(ns)
        current = await self.stored_config(ns)
        if config.schema_version < current.schema_version:
            raise InvalidRequest(
                f"schema version of {ns!r} cannot go down from {current.schema_version} to "
                f"{config.schema_version}: values written since would be unreadable",
                details={"schema_version": current.schema_version})
        migrations.check_declarable(ns, config.schema_version)
        revision = await self.store.put(names.config_item(ns), msgspec.json.encode(config), {})
        return self.info(ns, config, revision)

    def info(self, ns: str, config: NamespaceConfig | None = None, revision: int = 0
             ) -> NamespaceInfo:
        config = config or self.index.config(ns) or DEFAULT
        keys, used = self.index.usage(ns, time.time())
        max_value, max_total = self.limits(config)
        return NamespaceInfo(namespace=ns, config=config, keys=keys, bytes=used,
                             max_value_bytes=max_value, max_total_bytes=max_total,
                             revision=revision)

    def all(self) -> list[NamespaceInfo]:
        return [self.info(ns) for ns in self.index.known_namespaces()]

    async def cleanup(self, ns: str, older_than_s: float, *, dry_run: bool) -> CleanupReply:
        """Delete every key of ``ns`` last written more than ``older_than_s`` ago.

        Candidates come from JetStream, not the cache; each delete is a compare-and-set on the
        revision that was found old, so a key written meanwhile is kept (``skipped``).
        """
        names.namespace(ns)
        now = time.time()
        cutoff = now - older_than_s
        latest = await self.store.scan(f"{ns}.>", last_only=True, headers_only=True)
        old = [s for s in latest if not s.removed and s.timestamp < cutoff
               and (s.expires_at is None or s.expires_at > now)]
        if dry_run:
            return CleanupReply(namespace=ns,
                                deleted=sorted(names.split(s.key)[1] for s in old))
        limit = asyncio.Semaphore(CLEANUP_PARALLEL)

        async def delete(item: str, revision: int) -> str | None:
            async with limit:
                try:
                    await self.store.put(item, b"", {**TOMBSTONE, EXPECTED_LAST: str(revision)})
                except RevisionConflict:
                    return None
                return names.split(item)[1]

        done = await asyncio.gather(*(delete(s.key, s.revision) for s in old))
        deleted = sorted(k for k in done if k is not None)
        return CleanupReply(namespace=ns, deleted=deleted, skipped=len(old) - len(deleted))
