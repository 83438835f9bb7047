"""Storage as services report it: the data directory's free space and JetStream's use against
its reservation, measured on a real server, and the gauges the alerts read."""

from __future__ import annotations

import shutil
from pathlib import Path

import nats
from prometheus_client import REGISTRY

from shared.natsserver import EmbeddedNats
from shared.storage import StorageProbe


async def test_probe_reports_disk_and_jetstream_use(nats_server: EmbeddedNats, tmp_path: Path,
                                                    unique: str) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=f"S{unique}", subjects=[f"s.{unique}"])
        probe = StorageProbe(f"probe-{unique}", js, tmp_path / "not-yet", reserved_bytes=10**9)
        before = await probe.measure()
        for _ in range(20):
            await js.publish(f"s.{unique}", b"x" * 10_000)
        after = await probe.measure()
        await js.delete_stream(f"S{unique}")
    finally:
        await nc.close()
    total, _, free = shutil.disk_usage(tmp_path)
    assert after.data_dir_size_bytes == total
    assert abs(after.data_dir_free_bytes - free) < 256 * 1024**2
    assert after.jetstream_reserved_bytes == 10**9  # no account limit: the server's reservation
    assert after.jetstream_used_bytes is not None and before.jetstream_used_bytes is not None
    assert after.jetstream_used_bytes - before.jetstream_used_bytes >= 200_000
    assert after.jetstream_used_ratio == round(after.jetstream_used_bytes / 10**9, 4)
    labels = {"service": f"probe-{unique}"}
    assert REGISTRY.get_sample_value("quantops_jetstream_storage_used_bytes", labels) == \
        after.jetstream_used_bytes
    assert REGISTRY.get_sample_value("quantops_data_dir_free_bytes", labels) == \
        after.data_dir_free_bytes
