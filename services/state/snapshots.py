"""Snapshots of namespaces into one checksummed file, and restores that never half-apply.

A snapshot file lives in the JetStream object store (``Bucket.STATE_SNAPSHOTS``) so every
replica can restore what any replica wrote; clients download and upload it as a file.

Restore makes each namespace exactly what the snapshot holds: values written, keys absent from
the snapshot deleted, configuration replaced. Before anything is written the whole file is
checked (checksum, every record, names, limits, schema versions). Then:

- up to ``MAX_BATCH`` changes go in one JetStream atomic batch: all stored or none, and no
  reader ever sees a mix;
- larger restores are written in atomic chunks under a journal record (``_restore.<id>``)
  stored in the same batch as each chunk. A replica that dies midway leaves the journal; any
  replica finding it stale re-runs the restore, which is idempotent (it writes only what still
  differs), so a restore is never left half-applied, though readers may see it in progress.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Sequence
from typing import Final

import msgspec
from nats.js import api
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from services.state import codec, names, snapshot_format, snapshot_import
from services.state.index import Index
from services.state.namespaces import DEFAULT, TOMBSTONE, Namespaces
from services.state.snapshot_format import ConfigRecord, Record, ValueRecord
from services.state.store import MAX_BATCH, ROLLUP, TTL, KvStore, Stored
from shared.contracts.state import ImportSnapshot, NamespaceConfig, RestoreReply, SnapshotInfo
from shared.errors import IntegrityError, InvalidRequest, NotFound, PayloadTooLarge
from shared.settings import StateSettings
from shared.subjects import Bucket

log = logging.getLogger(__name__)

Message = tuple[str, bytes, dict[str, str]]
#: A journal not advanced for this long belongs to a replica that died: resume it.
JOURNAL_STALE_S: Final = 30.0


class Journal(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    namespace: str
    heartbeat_at: float


class Snapshots:
    def __init__(self, store: KvStore, index: Index, namespaces: Namespaces,
                 settings: StateSettings) -> None:
        self.store = store
        self.index = index
        self.namespaces = namespaces
        self.settings = settings
        self._objects: ObjectStore | None = None

    async def objects(self) -> ObjectStore:
        if self._objects is None:
            js = self.store.nc.jetstream()
            self._objects = await js.create_object_store(
                Bucket.STATE_SNAPSHOTS, storage=api.StorageType.FILE,
                replicas=self.store.replicas)
        return self._objects

    async def create(self, ns: str) -> SnapshotInfo:
        if ns:
            names.namespace(ns)
        records = await self._records(ns)
        spaces = [ns] if ns else sorted({r.namespace for r in records})
        now = time.time()
        data = snapshot_format.render(records, namespaces=spaces, created_at=now)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        name = f"{ns or 'all'}-{stamp}-{uuid.uuid4().hex[:6]}.qsnap"
        head = data.partition(b"\n")[0].decode()
        await (await self.objects()).put(name, data, meta=api.ObjectMeta(name=name,
                                                                         description=head))
        return _info(name, len(data), head)

    async def _records(self, ns: str) -> list[Record]:
        latest = await self.store.scan(f"{ns}.>" if ns else ">", last_only=True)
        now = time.time()
        records: list[Record] = []
        for s in latest:
            space, key = names.split(s.key)
            if space.startswith("_") or not _live(s, now):
                continue
            records.append(ValueRecord(
                namespace=space, key=key, value=msgspec.Raw(codec.decode_stored(s.data,
                                                                                s.headers)),
                schema_version=codec.schema_of(s.headers), revision=s.revision,
                updated_at=s.timestamp, expires_at=s.expires_at))
        configs = await self.store.scan(f"{names.CONFIG_TOKEN}.{ns or '*'}", last_only=True)
        for s in configs:
            if not s.removed:
                config = msgspec.json.decode(s.data, type=NamespaceConfig)
                records.insert(0, ConfigRecord(namespace=names.split(s.key)[1], config=config))
        return records

    async def list_all(self) -> list[SnapshotInfo]:
        try:
            infos = await (await self.objects()).list(ignore_deletes=True)
        except NotFoundError:
            return []
        out = [_info(i.name or "", i.size or 0, i.description or "") for i in infos
               if i.name and not i.deleted]
        return sorted(out, key=lambda i: i.created_at, reverse=True)

    async def download(self, name: str) -> bytes:
        names.snapshot(name)
        try:
            result = await (await self.objects()).get(name)
        except ObjectNotFoundError as e:
            raise NotFound(f"no snapshot {name!r}", details={"name": name}) from e
        except Exception as e:  # nats-py checks the object's digest itself
            raise IntegrityError(f"snapshot {name!r} cannot be read: {e}",
                                 details={"name": name}) from e
        return bytes(result.data or b"")

    async def import_staged(self, req: ImportSnapshot) -> SnapshotInfo:
        """Store a snapshot file its uploader staged (``snapshot_import``)."""
        names.snapshot(req.name)
        data = await snapshot_import.staged_file(self.store.nc.jetstream(), req)
        head = data.partition(b"\n")[0].decode(errors="replace")[:4096]
        await (await self.objects()).put(req.name, data, meta=api.ObjectMeta(
            name=req.name, description=head))
        return _info(req.name, len(data), head)

    async def restore(self, name: str, ns: str = "", journal: str | None = None
                      ) -> RestoreReply:
        header, records = snapshot_format.parse(await self.download(name))
        if ns and ns not in header.namespaces:
            raise InvalidRequest(f"snapshot {name!r} does not hold namespace {ns!r}",
                                 details={"namespaces": header.namespaces})
        targets = [ns] if ns else header.namespaces
        messages, written, deleted = await self._plan(records, targets)
        revision, atomic = await self._apply(name, ns, messages, journal)
        log.info("snapshot restored", extra={"snapshot": name, "written": written,
                                             "deleted": deleted, "atomic": atomic})
        return RestoreReply(name=name, namespaces=targets, written=written, deleted=deleted,
                            atomic=atomic, revision=revision)

    async def _plan(self, records: Sequence[Record], targets: list[str]
                    ) -> tuple[list[Message], int, int]:
        """Every message that makes ``targets`` equal to the snapshot; validates first."""
        configs = {r.namespace: r.config for r in records if isinstance(r, ConfigRecord)}
        values = [r for r in records if isinstance(r, ValueRecord) and r.namespace in targets]
        for space in targets:
            self._validate(space, configs.get(space, DEFAULT),
                           [r for r in values if r.namespace == space])
        messages: list[Message] = []
        written = deleted = 0
        now = time.time()
        for space in targets:
            current = {s.key: s for s in await self.store.scan(f"{space}.>", last_only=True)
                       if _live(s, now)}
            messages += await self._config_messages(space, configs.get(space))
            for r in values:
                if r.namespace != space or (r.expires_at is not None and r.expires_at <= now):
                    continue
                item = names.item(space, r.key)
                msg = self._value_message(item, r, current.pop(item, None), now)
                if msg is not None:
                    messages.append(msg)
                    written += 1
            messages += [(item, b"", dict(TOMBSTONE)) for item in sorted(current)]
            deleted += len(current)
        return messages, written, deleted

    def _validate(self, space: str, config: NamespaceConfig, values: list[ValueRecord]
                  ) -> None:
        try:
            names.namespace(space)
            for r in values:
                names.key(r.key)
        except InvalidRequest as e:
            raise IntegrityError(f"snapshot holds an invalid name: {e.message}",
                                 details=e.details) from e
        max_value, max_total = self.namespaces.limits(config)
        sizes = [len(r.value) for r in values]
        if (sizes and max(sizes) > max_value) or sum(sizes) > max_total:
            raise PayloadTooLarge(
                f"snapshot of {space!r} exceeds its limits ({max_value} bytes a value, "
                f"{max_total} in all)", details={"namespace": space, "bytes": sum(sizes)})
        newer = [r.key for r in values if r.schema_version > config.schema_version]
        if newer:
            raise IntegrityError(
                f"snapshot of {space!r} holds values newer than its schema version "
                f"{config.schema_version}", details={"keys": newer[:20]})

    async def _config_messages(self, space: str, config: NamespaceConfig | None
                               ) -> list[Message]:
        item = names.config_item(space)
        stored = await self.store.last(item)
        exists = stored is not None and not stored.removed
        if config is None:
            return [(item, b"", dict(TOMBSTONE))] if exists else []
        encoded = msgspec.json.encode(config)
        return [] if exists and stored is not None and stored.data == encoded else [
            (item, encoded, {})]

    def _value_message(self, item: str, r: ValueRecord, current: Stored | None, now: float
                       ) -> Message | None:
        document = bytes(r.value)
        if (current is not None and r.expires_at is None and current.expires_at is None
                and codec.schema_of(current.headers) == r.schema_version
                and codec.decode_stored(current.data, current.headers) == document):
            return None  # already as in the snapshot
        data, headers, _ = codec.encode(document, schema_version=r.schema_version,
                                        threshold=self.settings.compress_threshold_bytes)
        if r.expires_at is not None:
            headers[TTL] = f"{max(1, math.ceil(r.expires_at - now))}s"
            headers[ROLLUP] = "sub"
        return item, data, headers

    async def _apply(self, name: str, ns: str, messages: list[Message], journal: str | None
                     ) -> tuple[int, bool]:
        """Write ``messages``: the last revision written, and whether it was one atomic
        batch."""
        if journal is None and len(messages) <= MAX_BATCH:
            return (await self.store.commit_batch(messages) if messages else 0), True
        journal = journal or f"{names.JOURNAL_TOKEN}.{uuid.uuid4().hex}"
        step = MAX_BATCH - 1
        chunks = [messages[i:i + step] for i in range(0, len(messages), step)] or [[]]
        revision = 0
        for n, chunk in enumerate(chunks, start=1):
            marker = (journal, b"", dict(TOMBSTONE)) if n == len(chunks) else (
                journal, msgspec.json.encode(Journal(name=name, namespace=ns,
                                                     heartbeat_at=time.time())), {})
            revision = await self.store.commit_batch([*chunk, marker])
        return revision, len(chunks) == 1

    async def resume_stale(self) -> int:
        """Finish restores whose replica died midway; how many were resumed."""
        now = time.time()
        resumed = 0
        for item, data in list(self.index.journals.items()):
            journal = msgspec.json.decode(data, type=Journal)
            if now - journal.heartbeat_at < JOURNAL_STALE_S:
                continue
            log.warning("resuming an unfinished restore", extra={"snapshot": journal.name})
            try:
                await self.restore(journal.name, journal.namespace, journal=item)
            except (NotFound, IntegrityError) as e:
                # The file is gone or damaged now: the restore cannot finish; say so once.
                log.error("abandoning an unfinished restore: %s", e.message,
                          extra={"snapshot": journal.name})
                await self.store.put(item, b"", dict(TOMBSTONE))
                continue
            resumed += 1
        return resumed

    async def resume_forever(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_STALE_S / 2)
            try:
                await self.resume_stale()
            except Exception:
                log.exception("could not resume a restore")


def _live(stored: Stored, now: float) -> bool:
    expires = stored.expires_at
    return not stored.removed and (expires is None or expires > now)


def _info(name: str, size: int, head: str) -> SnapshotInfo:
    try:
        header = msgspec.json.decode(head, type=snapshot_format.Header)
    except msgspec.DecodeError:
        return SnapshotInfo(name=name, sha256="", namespaces=[], records=0, size_bytes=size,
                            created_at=0.0)
    return SnapshotInfo(name=name, sha256=header.sha256, namespaces=header.namespaces,
                        records=header.records, size_bytes=size, created_at=header.created_at)
