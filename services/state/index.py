"""A replica's in-memory view of the bucket, built only from its feed: never the source of truth.

For every live key: revision, size, times, schema version and (within the cache budget) the
decoded document. It gives cached reads (when the feed is fresh for the caller), key listings,
per-namespace usage for limits and health, candidates for cleanup, and each namespace's
configuration. Keys with a TTL leave it when they expire, by the clock, exactly when JetStream
drops their message (which it does without telling anyone).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass

import msgspec

from services.state import codec, names
from services.state.store import Stored
from shared.contracts.state import NamespaceConfig
from shared.errors import IntegrityError

log = logging.getLogger(__name__)

_config_decoder = msgspec.json.Decoder(NamespaceConfig)


@dataclass(slots=True)
class Entry:
    revision: int
    size: int
    updated_at: float
    expires_at: float | None
    schema: int
    value: bytes | None  # the decoded document, when cached

    def alive(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


class Index:
    """Args:
    cache_max_bytes: documents kept in memory in total; beyond it reads go to JetStream.
    """

    def __init__(self, *, cache_max_bytes: int) -> None:
        self.cache_max_bytes = cache_max_bytes
        self.cache_value_max = max(0, cache_max_bytes // 64)
        self.clear()

    def clear(self) -> None:
        self.namespaces: dict[str, dict[str, Entry]] = {}
        self.bytes_used: dict[str, int] = {}
        self.configs: dict[str, NamespaceConfig] = {}
        self.journals: dict[str, bytes] = {}  # unfinished restores: bucket key -> record
        self.cached_bytes = 0
        self._expiry: list[tuple[float, int, str, str]] = []
        self._tiebreak = itertools.count()

    # -- fed by the feed ------------------------------------------------------------------

    def apply(self, s: Stored) -> None:
        ns, key = names.split(s.key)
        if ns.startswith("_"):
            if ns == names.CONFIG_TOKEN:
                self._apply_config(key, s)
            elif ns == names.JOURNAL_TOKEN:
                if s.removed:
                    self.journals.pop(s.key, None)
                else:
                    self.journals[s.key] = s.data
            return
        entries = self.namespaces.setdefault(ns, {})
        old = entries.get(key)
        if old is not None:
            if old.revision > s.revision:
                return
            self._forget(ns, key, old)
        if s.removed:
            return
        size = codec.size_of(s.data, s.headers)
        value = None
        if size <= self.cache_value_max and self.cached_bytes + size <= self.cache_max_bytes:
            try:  # inflated no further than the size it claims: the cache's budget holds
                value = codec.decode_stored(s.data, s.headers, max_bytes=size)
                self.cached_bytes += len(value)
            except IntegrityError:
                log.warning("a stored value does not match its size; not cached",
                            extra={"namespace": ns, "revision": s.revision})
        entry = Entry(s.revision, size, s.timestamp, s.expires_at, codec.schema_of(s.headers),
                      value)
        entries[key] = entry
        self.bytes_used[ns] = self.bytes_used.get(ns, 0) + size
        if entry.expires_at is not None:
            heapq.heappush(self._expiry, (entry.expires_at, next(self._tiebreak), ns, key))

    def _apply_config(self, ns: str, s: Stored) -> None:
        if s.removed:
            self.configs.pop(ns, None)
            return
        try:
            self.configs[ns] = _config_decoder.decode(s.data)
        except msgspec.DecodeError:
            self.configs.pop(ns, None)

    def _forget(self, ns: str, key: str, entry: Entry) -> None:
        del self.namespaces[ns][key]
        self.bytes_used[ns] -= entry.size
        if entry.value is not None:
            self.cached_bytes -= len(entry.value)

    def sweep(self, now: float) -> int:
        """Drop keys whose TTL has passed; how many."""
        dropped = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, _, ns, key = heapq.heappop(self._expiry)
            entry = self.namespaces.get(ns, {}).get(key)
            if entry is not None and not entry.alive(now):
                self._forget(ns, key, entry)
                dropped += 1
        return dropped

    # -- read by handlers -------------------------------------------------------------------

    def lookup(self, ns: str, key: str, now: float) -> Entry | None:
        entries = self.namespaces.get(ns)
        entry = entries.get(key) if entries else None
        return entry if entry is not None and entry.alive(now) else None

    def config(self, ns: str) -> NamespaceConfig | None:
        return self.configs.get(ns)

    def usage(self, ns: str, now: float) -> tuple[int, int]:
        """Live keys and their JSON bytes in ``ns``."""
        self.sweep(now)
        return len(self.namespaces.get(ns, ())), self.bytes_used.get(ns, 0)

    def keys(self, ns: str, *, prefix: str, after: str, limit: int, now: float
             ) -> tuple[list[tuple[str, Entry]], bool]:
        """Up to ``limit`` live keys of ``ns`` after ``after`` in key order; and whether more
        follow."""
        entries = self.namespaces.get(ns, {})
        chosen = sorted(k for k, e in entries.items()
                        if k > after and k.startswith(prefix) and e.alive(now))
        return [(k, entries[k]) for k in chosen[:limit]], len(chosen) > limit

    def known_namespaces(self) -> list[str]:
        return sorted({ns for ns, e in self.namespaces.items() if e} | set(self.configs))
