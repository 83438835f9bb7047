"""What happened, recorded inside the transaction that made it happen: one audit row (who,
when, from, to, why) and, for facts others react to, one event in the outbox.

The outbox is published after commit by ``events.Publisher``; writing it here, in the same
transaction, is what guarantees an alias never moves without its event, even across a crash.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import aiosqlite
import msgspec

from services.registry.records import from_epoch
from shared.contracts.registry import AuditEntry, RegistryEvent
from shared.subjects import ModelEvent

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Fact:
    """One change to record. ``event`` is None for changes nobody needs to hear about."""

    action: str
    model: str
    principal: str
    at: float
    event: ModelEvent | None = None
    alias: str = ""
    from_version: int | None = None
    to_version: int | None = None
    sha256: str = ""
    previous_sha256: str = ""
    reason: str = ""


async def record(conn: aiosqlite.Connection, fact: Fact) -> None:
    await conn.execute(
        "INSERT INTO audit (at, principal, model, action, alias, from_version, to_version, "
        "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (fact.at, fact.principal, fact.model, fact.action, fact.alias, fact.from_version,
         fact.to_version, fact.reason))
    if fact.event is None:
        return
    event_id = uuid.uuid4().hex
    at = from_epoch(fact.at)
    assert at is not None
    body = RegistryEvent(
        id=event_id, kind=fact.action, model=fact.model, at=at, alias=fact.alias,
        version=fact.to_version if fact.to_version is not None else fact.from_version,
        from_version=fact.from_version, to_version=fact.to_version, sha256=fact.sha256,
        previous_sha256=fact.previous_sha256, principal=fact.principal, reason=fact.reason)
    await conn.execute("INSERT INTO outbox (subject, msg_id, payload) VALUES (?, ?, ?)",
                       (fact.event.value, event_id, _encoder.encode(body)))


def audit_entry(row: aiosqlite.Row) -> AuditEntry:
    at = from_epoch(row["at"])
    assert at is not None
    return AuditEntry(id=row["id"], at=at, principal=row["principal"], model=row["model"],
                      action=row["action"], alias=row["alias"],
                      from_version=row["from_version"], to_version=row["to_version"],
                      reason=row["reason"])
