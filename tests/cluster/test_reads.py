"""Reads on a replicated bucket: a strong read sees every write acknowledged before it.

A JetStream direct get may be answered by any replica, and a follower may not have applied a
write the leader has already acknowledged (seen here: about 7% of direct gets right after an
acknowledged put on an R3 bucket returned the previous revision). The load in test_faults
paces its clients and rarely reads that soon; this test reads at once, on purpose.
"""

from __future__ import annotations

import uuid

import pytest

from shared.bus import Bus
from shared.clients.state import StateClient
from tests.cluster.support import System

pytestmark = pytest.mark.timeout(300)


async def test_a_strong_read_sees_every_acknowledged_write(system: System, client: Bus) -> None:
    writer, reader = StateClient(client), StateClient(client)
    key = f"read-{uuid.uuid4().hex[:8]}"
    stale = []
    for i in range(1500):
        revision = (await writer.put("chaos", key, i)).revision
        entry = await reader.get("chaos", key, strong=True)
        if entry.revision < revision:
            stale.append((revision, entry.revision))
    assert not stale, f"{len(stale)} of 1500 strong reads missed an acknowledged write: " \
                      f"{stale[:5]}"
