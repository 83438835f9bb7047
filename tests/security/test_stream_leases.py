"""The gateway keeps its event-stream leases (``services/gateway/streamleases.py``) under the
NATS permissions generated for deployment: without a grant it would fall back, silently but
for a warning, to a per-replica cap."""

from __future__ import annotations

import httpx
import pytest
from nats.js.errors import BucketNotFoundError, NoKeysError

from services.gateway.streamleases import slot_key
from shared.subjects import Bucket
from tests.deployment import Deployment
from tests.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_an_open_stream_holds_a_lease_under_generated_permissions(
        ready: Deployment) -> None:
    headers = {"Authorization": f"Bearer {ready.admin_key}"}

    async def leases() -> set[str]:
        """The admin's leases now (other tests' streams may still hold some of them)."""
        nc = await ready.connect("gateway")
        try:
            kv = await nc.jetstream().key_value(Bucket.STREAM_LEASES)
            return {k for k in await kv.keys() if k.rsplit(".", 1)[0] == mine}
        except (NoKeysError, BucketNotFoundError):  # none yet, or deleted keys (not listed)
            return set()
        finally:
            await nc.close()

    async with httpx.AsyncClient(base_url=ready.gateway_url, headers=headers, timeout=30) as http:
        me = (await http.get("/v1/me")).json()["name"]
        mine = slot_key(me, 0).rsplit(".", 1)[0]
        before = await leases()
        async with http.stream("GET", "/v1/task-events") as r:
            assert r.status_code == 200
            taken = (await eventually(leases, what="a lease taken")) - before
            assert len(taken) == 1, taken
    assert not [v for v in ready.violations() if Bucket.STREAM_LEASES in v]

    async def released() -> bool:
        return not taken & await leases()

    await eventually(released, what="the lease deleted when the stream ended")
