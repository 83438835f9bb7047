"""The EVENTS stream and the outbox publisher.

Events are written to the ``outbox`` table inside the transaction that causes them and
published here after commit, in order, each with ``Nats-Msg-Id`` = event id so a re-publish
after a crash is dropped by the stream's duplicate window. Consumers should still treat the
event id as the key of an at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import logging

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError

from services.registry.catalog import Catalog, placeholders
from shared import telemetry
from shared.logs import correlation_id
from shared.settings import Settings
from shared.streams import ensure_stream, events_config
from shared.subjects import Header

log = logging.getLogger(__name__)

BATCH = 256


async def ensure_events_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the shared EVENTS stream, or bring its limits to the settings."""
    await ensure_stream(js, events_config(settings), update=True)


class Publisher:
    """Drains the outbox into JetStream; safe to call from many coroutines at once."""

    def __init__(self, catalog: Catalog, js: JetStreamContext) -> None:
        self.catalog = catalog
        self.js = js
        self._lock = asyncio.Lock()

    async def flush(self) -> int:
        """Publish what is pending; returns how many went out. Failures stay for a retry."""
        sent = 0
        async with self._lock:
            while True:
                rows = await self.catalog.fetchall(
                    "SELECT id, subject, msg_id, payload FROM outbox ORDER BY id LIMIT ?",
                    (BATCH,))
                if not rows:
                    return sent
                done = await self._publish(rows)
                if done:
                    async with self.catalog.write() as conn:
                        await conn.execute(f"DELETE FROM outbox WHERE id IN "
                                           f"({placeholders(done)})", done)
                    sent += len(done)
                if len(done) < len(rows):
                    return sent

    async def _publish(self, rows: list) -> list[int]:  # type: ignore[type-arg]
        done: list[int] = []
        for row in rows:
            headers = {Header.MSG_ID.value: row["msg_id"],
                       Header.CORRELATION_ID.value: correlation_id.get()}
            telemetry.inject(headers)
            try:
                await self.js.publish(row["subject"], row["payload"], headers=headers)
            except (NatsError, JsError, TimeoutError) as e:
                log.warning("event not published yet, will retry",
                            extra={"subject": row["subject"], "error": repr(e)})
                break
            done.append(row["id"])
        return done

    async def pending(self) -> int:
        row = await self.catalog.fetchone("SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0
