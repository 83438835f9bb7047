"""The pieces of the KV auth store: key names, the mirror the feed fills, conditional writes.

Every write is settled before it returns: this replica's feed has applied it (``KvFeed``), so
the mirror and the live view of this replica include it. See ``store_kv`` for the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec
import nats.errors
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_OP, KeyValue

from services.gateway.auth.store import ChangeListener, KeyRow, RefreshRow, UserRow
from shared.errors import Conflict, ServiceUnavailable
from shared.kvbuckets import ensure_bucket
from shared.kvfeed import KvEntry, KvFeed
from shared.subjects import Bucket

log = logging.getLogger(__name__)

T = TypeVar("T")
USERS, KEYS, REFRESH, SESSIONS = "users", "keys", "refresh", "sessions"
_NAME = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")  # shared.contracts.auth.UserName
_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # key ids, refresh token ids, session ids
_DOT = "=2E"
_WRONG_LAST = (10071, 10164)  # JSStreamWrongLastSequence(Constant)Err
#: Expiring delete markers go: long after every replica has applied them.
_MARKER_TTL_S = 24 * 3600
_ATTEMPTS = 8  # read-modify-write retries under contention before answering 409

_encode = msgspec.json.Encoder().encode


@dataclasses.dataclass(frozen=True, slots=True)
class Revoked:
    until: float


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    USERS: msgspec.json.Decoder(UserRow), KEYS: msgspec.json.Decoder(KeyRow),
    REFRESH: msgspec.json.Decoder(RefreshRow), SESSIONS: msgspec.json.Decoder(Revoked)}


def user_key(name: str) -> str | None:
    """The KV key of a user; None for a name no user can have (so: not found)."""
    return f"{USERS}.{name.replace('.', _DOT)}" if _NAME.fullmatch(name) else None


def id_key(kind: str, ident: str) -> str | None:
    return f"{kind}.{ident}" if _ID.fullmatch(ident) else None


class Mirror:
    """Every row of the bucket as the feed applied it, and the listener to tell."""

    def __init__(self) -> None:
        self.users: dict[str, UserRow] = {}
        self.keys: dict[str, KeyRow] = {}
        self.refresh: dict[str, RefreshRow] = {}
        self.sessions: dict[str, float] = {}
        self.listener: ChangeListener | None = None

    def apply_entry(self, entry: KvEntry) -> None:
        self.apply(entry.key, None if entry.removed else entry.data)

    def apply(self, key: str, value: bytes | None) -> None:
        kind, _, ident = key.partition(".")
        decoder = _DECODERS.get(kind)
        if decoder is None:
            return  # not ours: a newer version's key
        row = decoder.decode(value) if value else None
        match kind:
            case "users":
                self._put(self.users, ident.replace(_DOT, "."), row)
            case "keys":
                self._put(self.keys, ident, row)
            case "refresh":
                self._put(self.refresh, ident, row)
            case "sessions":
                self._put(self.sessions, ident, row.until if row else None)
        self._tell(kind, ident, row)

    @staticmethod
    def _put(rows: dict[str, Any], ident: str, row: Any) -> None:
        if row is None:
            rows.pop(ident, None)
        else:
            rows[ident] = row

    def _tell(self, kind: str, ident: str, row: Any) -> None:
        if self.listener is None:
            return
        if kind == USERS:
            self.listener.user_changed(ident.replace(_DOT, "."), row)
        elif kind == KEYS:
            self.listener.key_changed(ident, row)
        elif kind == SESSIONS and row is not None:
            self.listener.session_revoked(ident, row.until)

    def replay(self, listener: ChangeListener) -> None:
        for name, user in self.users.items():
            listener.user_changed(name, user)
        for key_id, key in self.keys.items():
            if key.revoked_at is None:
                listener.key_changed(key_id, key)
        now = time.time()
        for session, until in self.sessions.items():
            if until > now:
                listener.session_revoked(session, until)


@contextlib.contextmanager
def _reachable(what: str) -> Iterator[None]:
    """NATS trouble becomes the domain's 503 (nothing nats-py raises leaks out)."""
    try:
        yield
    except (nats.errors.Error, TimeoutError) as e:
        raise ServiceUnavailable(f"auth store unavailable ({what}): {e!r}",
                                 details={"bucket": str(Bucket.AUTH)}) from e


class Bucketed:
    """Conditional reads and writes of one bucket, each write settled in the local feed."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, prefix: str, feed: KvFeed[KvEntry], *,
                 settle_timeout_s: float) -> None:
        self.js = js
        self.kv = kv
        self.prefix = prefix
        self.feed = feed
        self.settle_timeout_s = settle_timeout_s

    async def get(self, key: str) -> tuple[int, Any] | None:
        """``(revision, row)`` of ``key``, or None."""
        with _reachable("get"):
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                return None
        if not entry.value or entry.revision is None:
            return None
        return entry.revision, _DECODERS[key.partition(".")[0]].decode(entry.value)

    async def create(self, key: str, row: Any) -> int | None:
        """Write ``row`` only if ``key`` has no value: its revision, or None."""
        with _reachable("create"):
            try:
                revision = await self.kv.create(key, _encode(row))
            except KeyWrongLastSequenceError:
                return None
        return await self.settle(revision)

    async def update(self, key: str, row: Any, last: int) -> int | None:
        """Write ``row`` only if ``key`` is still at revision ``last``: its revision, or None."""
        with _reachable("update"):
            try:
                revision = await self.kv.update(key, _encode(row), last=last)
            except KeyWrongLastSequenceError:
                return None
        return await self.settle(revision)

    async def delete(self, key: str, *, last: int | None = None, expiring: bool = False
                     ) -> int | None:
        """A delete marker, permanent or (``expiring``) removed by the server a day later;
        None if ``key`` moved past ``last``. Never a KV purge: that is a rollup, which the
        bucket refuses (``shared.kvbuckets``); in a history-1 bucket the marker alone replaces
        the value. Published here, not with ``kv.delete``, for the revision."""
        headers = {KV_OP: KV_DEL}
        if last is not None:
            headers[api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(last)
        with _reachable("delete"):
            try:
                ack = await self.js.publish(self.prefix + key, b"", headers=headers,
                                            msg_ttl=_MARKER_TTL_S if expiring else None)
            except APIError as e:
                if e.err_code in _WRONG_LAST:
                    return None
                raise
        return await self.settle(ack.seq)

    async def modify(self, key: str, change: Callable[[T], T | None]) -> T | None:
        """Read, ``change``, write back if nobody wrote meanwhile (else again). None when there
        is no row or ``change`` declines (returns None)."""
        for _ in range(_ATTEMPTS):
            found = await self.get(key)
            if found is None:
                return None
            new = change(found[1])
            if new is None or await self.update(key, new, found[0]) is not None:
                return new
        raise Conflict("too many concurrent changes of one auth record; retry",
                       details={"key": key.partition(".")[0]})

    async def settle(self, revision: int) -> int:
        """Wait until this replica's feed applied ``revision``: read-your-writes here."""
        if not await self.feed.wait_applied(revision, self.settle_timeout_s):
            raise ServiceUnavailable(
                "the change was stored but this gateway has not seen it yet; retry",
                details={"revision": revision})
        return revision


async def open_bucket(js: JetStreamContext, bucket: str, replicas: int) -> KeyValue:
    return await ensure_bucket(
        js, bucket, history=1, replicas=replicas,
        direct=False,  # reads from the leader: a follower may lag
        description="quantops gateway: users, API key hashes, sessions")
