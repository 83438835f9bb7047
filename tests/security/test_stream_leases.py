"""The gateway keeps its event-stream leases (``services/gateway/streamleases.py``) under the
NATS permissions generated for deployment: without a grant it would fall back, silently but
for a warning, to a per-replica cap."""

from __future__ import annotations

import httpx
import pytest
from nats.js.errors import NoKeysError

from services.gateway.streamleases import slot_key
from shared.subjects import Bucket
from tests.security.conftest import Deployment
from tests.support import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_an_open_stream_holds_a_lease_under_generated_permissions(
        ready: Deployment) -> None:
    headers = {"Authorization": f"Bearer {ready.admin_key}"}
    async with httpx.AsyncClient(base_url=ready.gateway_url, headers=headers, timeout=30) as http:
        me = (await http.get("/v1/me")).json()["name"]
        nc = await ready.connect("gateway")
        try:
            async with http.stream("GET", "/v1/task-events") as r:
                assert r.status_code == 200
                kv = await nc.jetstream().key_value(Bucket.STREAM_LEASES)
                entry = await kv.get(slot_key(me, 0))
                assert entry.value
        finally:
            await nc.close()
    assert not [v for v in ready.violations() if Bucket.STREAM_LEASES in v]

    async def released() -> bool:
        nc = await ready.connect("gateway")
        try:
            kv = await nc.jetstream().key_value(Bucket.STREAM_LEASES)
            await kv.keys()
        except NoKeysError:  # deleted keys are not listed
            return True
        finally:
            await nc.close()
        return False

    await eventually(released, what="the lease deleted when the stream ended")
