"""Reads: get (latest or at a revision), list, history.

Where a read is answered from:

- ``min_revision`` given and this replica's feed has applied it (``Feed.fresh``): the index,
  and for a get the cached document. The caller sees every write it has seen acknowledged or
  read (read-your-writes, monotonic reads), on whichever replica its next request lands.
- otherwise (no ``min_revision``, or the feed is behind, lost, or still catching up): JetStream
  itself, by direct get or an ordered consumer: every write acknowledged to anyone before the
  request arrived is seen.

Documents written in an older schema version are migrated on the way out.
"""

from __future__ import annotations

import time

import msgspec

from services.state import codec, metrics, migrations, names
from services.state.index import Index
from services.state.namespaces import DEFAULT, Namespaces
from services.state.store import KvStore, Stored
from shared.contracts.state import (
    NULL,
    GetReply,
    GetRequest,
    HistoryEntry,
    HistoryReply,
    HistoryRequest,
    KeyInfo,
    ListReply,
    ListRequest,
)
from shared.errors import NotFound
from shared.kvfeed import KvFeed
from shared.settings import StateSettings


def _not_found(ns: str, key: str, revision: int | None = None) -> NotFound:
    if revision is not None:
        return NotFound(f"{ns}/{key} has no revision {revision}",
                        details={"namespace": ns, "key": key, "revision": revision})
    return NotFound(f"no key {key!r} in namespace {ns!r}", details={"namespace": ns, "key": key})


class Reader:
    def __init__(self, store: KvStore, index: Index, feed: KvFeed[Stored], namespaces: Namespaces,
                 settings: StateSettings) -> None:
        self.store = store
        self.index = index
        self.feed = feed
        self.namespaces = namespaces
        self.settings = settings

    async def get(self, req: GetRequest) -> GetReply:
        ns, key = names.namespace(req.namespace), names.key(req.key)
        if req.revision is not None:
            return await self._at(ns, key, req.revision)
        now = time.time()
        if req.min_revision is not None and self.feed.fresh(req.min_revision):
            entry = self.index.lookup(ns, key, now)
            if entry is None:
                raise _not_found(ns, key)
            if entry.value is not None:
                target = (self.index.config(ns) or DEFAULT).schema_version
                metrics.read(ns, entry.size, cached=True)
                return self._reply(ns, key, entry.revision, entry.value, entry.schema, target,
                                   entry.updated_at, entry.expires_at)
        stored = await self.store.last(names.item(ns, key))
        if stored is None or stored.removed or not _alive(stored, now):
            raise _not_found(ns, key)
        return await self._from_stored(ns, key, stored, req.min_revision)

    async def _at(self, ns: str, key: str, revision: int) -> GetReply:
        stored = await self.store.at(revision) if revision > 0 else None
        if stored is None or stored.key != names.item(ns, key) or stored.removed:
            raise _not_found(ns, key, revision)
        return await self._from_stored(ns, key, stored, None)

    async def _from_stored(self, ns: str, key: str, stored: Stored, min_revision: int | None
                           ) -> GetReply:
        config = await self.namespaces.config(ns, min_revision)
        document = codec.decode_stored(stored.data, stored.headers)
        metrics.read(ns, len(document), cached=False)
        return self._reply(ns, key, stored.revision, document, codec.schema_of(stored.headers),
                           config.schema_version, stored.timestamp, stored.expires_at)

    @staticmethod
    def _reply(ns: str, key: str, revision: int, document: bytes, stored_version: int,
               target: int, updated_at: float, expires_at: float | None) -> GetReply:
        if stored_version != target:
            document = migrations.migrate(ns, document, stored_version, target)
        return GetReply(namespace=ns, key=key, revision=revision, value=msgspec.Raw(document),
                        schema_version=target, stored_schema_version=stored_version,
                        updated_at=updated_at, expires_at=expires_at)

    async def list_keys(self, req: ListRequest) -> ListReply:
        ns, prefix = names.namespace(req.namespace), names.prefix(req.prefix)
        limit = min(req.limit, self.settings.max_list_limit)
        now = time.time()
        if req.min_revision is not None and self.feed.fresh(req.min_revision):
            page, more = self.index.keys(ns, prefix=prefix, after=req.cursor, limit=limit,
                                         now=now)
            infos = [KeyInfo(key=k, revision=e.revision, size_bytes=e.size,
                             updated_at=e.updated_at, expires_at=e.expires_at) for k, e in page]
        else:
            infos, more = await self._list_stored(ns, prefix, req.cursor, limit, now)
        return ListReply(namespace=ns, items=infos,
                         next_cursor=infos[-1].key if more and infos else "")

    async def _list_stored(self, ns: str, prefix: str, after: str, limit: int, now: float
                           ) -> tuple[list[KeyInfo], bool]:
        latest = await self.store.scan(f"{ns}.>", last_only=True, headers_only=True)
        infos = []
        for s in latest:
            key = names.split(s.key)[1]
            if s.removed or not _alive(s, now) or key <= after or not key.startswith(prefix):
                continue
            infos.append(KeyInfo(key=key, revision=s.revision,
                                 size_bytes=codec.size_of(s.data, s.headers),
                                 updated_at=s.timestamp, expires_at=s.expires_at))
        infos.sort(key=lambda i: i.key)
        return infos[:limit], len(infos) > limit

    async def history(self, req: HistoryRequest) -> HistoryReply:
        ns, key = names.namespace(req.namespace), names.key(req.key)
        revisions = await self.store.scan(names.item(ns, key), last_only=False)
        if not revisions:
            raise _not_found(ns, key)
        entries = [
            HistoryEntry(revision=s.revision, operation="delete" if s.removed else "put",
                         value=NULL if s.removed else msgspec.Raw(
                             codec.decode_stored(s.data, s.headers)),
                         schema_version=codec.schema_of(s.headers), updated_at=s.timestamp)
            for s in reversed(revisions[-req.limit:])
        ]
        return HistoryReply(namespace=ns, key=key, entries=entries)


def _alive(stored: Stored, now: float) -> bool:
    expires = stored.expires_at
    return expires is None or expires > now

