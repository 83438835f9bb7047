"""Writes: put and delete, with compare-and-set, TTL, limits, compression and schema stamp.

Compare-and-set is JetStream's own check (``Nats-Expected-Last-Subject-Sequence``), done by
the stream leader when it stores the message, so it holds across any number of replicas: of two
writers naming the same revision, exactly one succeeds. A write is acknowledged only after
JetStream has stored (and, with ``sync_interval: always``, synced) it.

A write with a TTL replaces the key's history (``Nats-Rollup: sub``): when its message
expires, no older revision may resurface as the current value.
"""

from __future__ import annotations

import time
from typing import Final

from services.state import codec, metrics, names
from services.state.index import Index
from services.state.namespaces import TOMBSTONE, Namespaces
from services.state.store import EXPECTED_LAST, MSG_ID, ROLLUP, TTL, KvStore, Stored
from shared.contracts.state import DeleteReply, DeleteRequest, PutReply, PutRequest
from shared.errors import InvalidRequest, NotFound, PayloadTooLarge, RevisionConflict
from shared.kvfeed import KvFeed
from shared.settings import StateSettings

#: Attempts of a write whose precondition raced with a delete (see ``_put_absent``).
ATTEMPTS: Final = 3
#: How long a write waits for the feed to reach the caller's ``min_revision``.
FEED_WAIT_S: Final = 0.05


class Writer:
    def __init__(self, store: KvStore, index: Index, feed: KvFeed[Stored], namespaces: Namespaces,
                 settings: StateSettings) -> None:
        self.store = store
        self.index = index
        self.feed = feed
        self.namespaces = namespaces
        self.settings = settings

    async def put(self, req: PutRequest) -> PutReply:
        ns, key = names.namespace(req.namespace), names.key(req.key)
        document = bytes(req.value)
        if req.min_revision:
            # The caller changed the configuration at that revision: give this replica's feed a
            # moment to bring it (else the configuration is read from JetStream).
            await self.feed.wait_fresh(req.min_revision, FEED_WAIT_S)
        config = await self.namespaces.config(ns, req.min_revision)
        self._check_limits(ns, key, len(document), *self.namespaces.limits(config))
        version = req.schema_version or config.schema_version
        if version > config.schema_version:
            raise InvalidRequest(
                f"schema version {version} is newer than namespace {ns!r} declares "
                f"({config.schema_version})",
                details={"schema_version": version, "declared": config.schema_version})
        data, headers, compressed = codec.encode(
            document, schema_version=version, threshold=self.settings.compress_threshold_bytes)
        if req.ttl_s is not None:
            headers[TTL] = f"{req.ttl_s}s"
            headers[ROLLUP] = "sub"
        item = names.item(ns, key)
        _idempotent(headers, item, req.request_id)
        if req.expected_revision == 0:
            revision = await self._put_absent(ns, item, data, headers)
        else:
            if req.expected_revision is not None:
                headers[EXPECTED_LAST] = str(req.expected_revision)
            revision = await self._store(ns, item, data, headers)
        metrics.written(ns, len(document))
        return PutReply(namespace=ns, key=key, revision=revision, compressed=compressed)

    def _check_limits(self, ns: str, key: str, size: int, max_value: int, max_total: int
                      ) -> None:
        if size > max_value:
            raise PayloadTooLarge(
                f"value of {ns}/{key} is {size} bytes; namespace {ns!r} allows {max_value}",
                details={"namespace": ns, "size_bytes": size, "max_value_bytes": max_value})
        now = time.time()
        _, used = self.index.usage(ns, now)
        old = self.index.lookup(ns, key, now)
        after = used - (old.size if old else 0) + size
        if after > max_total:
            raise PayloadTooLarge(
                f"namespace {ns!r} would hold {after} bytes; its limit is {max_total}",
                details={"namespace": ns, "bytes": used, "size_bytes": size,
                         "max_total_bytes": max_total})

    async def _store(self, ns: str, item: str, data: bytes, headers: dict[str, str]) -> int:
        try:
            return await self.store.put(item, data, headers)
        except RevisionConflict as e:
            replayed = await self._replayed(item, headers)
            if replayed is not None:
                return replayed
            metrics.conflict(ns)
            raise await self._conflict(item, e) from None

    async def _replayed(self, item: str, headers: dict[str, str]) -> int | None:
        """The revision of this very write if it is already the key's latest: JetStream checks
        a compare-and-set before its duplicate window, so a retried CAS write would otherwise
        conflict with itself."""
        msg_id = headers.get(MSG_ID)
        if msg_id is None:
            return None
        latest = await self.store.last(item)
        if latest is not None and latest.headers.get(MSG_ID) == msg_id:
            return latest.revision
        return None

    async def _put_absent(self, ns: str, item: str, data: bytes, headers: dict[str, str]
                          ) -> int:
        """Expected revision 0: the key must not exist. A deleted or expired key does not, but
        JetStream still counts its tombstone as the subject's last message: name that one."""
        expected = 0
        for _ in range(ATTEMPTS):
            try:
                return await self.store.put(item, data, {**headers, EXPECTED_LAST: str(expected)})
            except RevisionConflict:
                latest = await self.store.last(item)
                if latest is not None and MSG_ID in headers and latest.headers.get(
                        MSG_ID) == headers[MSG_ID]:
                    return latest.revision  # this write, replayed (see ``_replayed``)
                if latest is not None and _live(latest):
                    metrics.conflict(ns)
                    raise _conflict_error(item, latest.revision) from None
                expected = latest.revision if latest is not None else 0
        metrics.conflict(ns)
        raise _conflict_error(item, 0)

    async def _conflict(self, item: str, e: RevisionConflict) -> RevisionConflict:
        """The conflict as callers see it: a deleted key's current revision is 0."""
        ns, key = names.split(item)
        entry = self.index.lookup(ns, key, time.time())
        if entry is not None and entry.revision == e.details.get("current_revision"):
            return e  # the index knows that revision as a live value: no need to ask
        latest = await self.store.last(item)
        current = latest.revision if latest is not None and _live(latest) else 0
        if current == e.details.get("current_revision"):
            return e
        return _conflict_error(item, current)

    async def delete(self, req: DeleteRequest) -> DeleteReply:
        ns, key = names.namespace(req.namespace), names.key(req.key)
        if req.expected_revision == 0:
            raise InvalidRequest("a delete's expected_revision must name an existing revision",
                                 details={"field": "expected_revision"})
        item = names.item(ns, key)
        headers = dict(TOMBSTONE)
        _idempotent(headers, item, req.request_id)
        if req.expected_revision is not None:
            headers[EXPECTED_LAST] = str(req.expected_revision)
        else:
            latest = await self.store.last(item)
            if latest is None or not _live(latest):
                raise NotFound(f"no key {key!r} in namespace {ns!r}",
                               details={"namespace": ns, "key": key})
        revision = await self._store(ns, item, b"", headers)
        return DeleteReply(namespace=ns, key=key, revision=revision)


def _idempotent(headers: dict[str, str], item: str, request_id: str) -> None:
    """JetStream's own dedupe: a second message with the same ``Nats-Msg-Id`` within the
    stream's duplicate window is acknowledged with the first one's sequence and not stored.
    The key is part of the id, so two keys never share one."""
    if request_id:
        headers[MSG_ID] = f"{item}:{request_id}"


def _live(stored: Stored) -> bool:
    if stored.removed:
        return False
    expires = stored.expires_at
    return expires is None or expires > time.time()


def _conflict_error(item: str, current: int) -> RevisionConflict:
    ns, key = names.split(item)
    return RevisionConflict(
        f"{ns}/{key} is at revision {current}" if current else f"{ns}/{key} does not exist",
        details={"current_revision": current})
