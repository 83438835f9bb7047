"""Disk and JetStream storage, as every service reports them in health and metrics.

Two things run out on a long-lived installation: the disk under the data directory (catalogs,
logs, the embedded JetStream store) and JetStream's storage reservation (``max_file_store``,
or the account's ``max_storage`` when an operator set account limits): past it, every stream
write is refused. Each service reports both in its health details and as gauges, refreshed
every ``REFRESH_S``, so the ``QuantopsDiskFilling`` and ``QuantopsJetStreamStorageFilling``
alerts fire while there is still room.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import msgspec
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JsError

from shared.metrics import DATA_FREE, DATA_SIZE, JS_RESERVED, JS_USED

log = logging.getLogger(__name__)

REFRESH_S = 15.0

class StorageReport(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str
    data_dir_free_bytes: int
    data_dir_size_bytes: int
    jetstream_used_bytes: int | None = None
    jetstream_reserved_bytes: int | None = None
    jetstream_used_ratio: float | None = None


def _existing(path: Path) -> Path:
    """The directory itself, or its nearest existing parent (before first start)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class StorageProbe:
    """Measures storage for one service.

    Args:
        service: label of the gauges.
        data_dir: whose file system to measure.
        reserved_bytes: the server's JetStream reservation, used when the account has no
            ``max_storage`` of its own.
    """

    def __init__(self, service: str, js: JetStreamContext, data_dir: Path, *,
                 reserved_bytes: int) -> None:
        self.service = service
        self.js = js
        self.data_dir = data_dir
        self.reserved_bytes = reserved_bytes
        self.last: StorageReport | None = None

    async def measure(self) -> StorageReport:
        usage = shutil.disk_usage(_existing(self.data_dir))
        used = reserved = None
        try:
            # Short: a user without JetStream grants (a gateway on SQLite) gets no answer.
            info = await asyncio.wait_for(self.js.account_info(), 2.0)
            used = int(info.storage)
            limit = info.limits.max_storage if info.limits else None
            reserved = int(limit) if limit and limit > 0 else self.reserved_bytes
        except (JsError, NatsError, TimeoutError) as e:  # reported as unknown, not raised
            log.debug("account info unavailable: %s", type(e).__name__)
        report = StorageReport(
            data_dir=str(self.data_dir), data_dir_free_bytes=usage.free,
            data_dir_size_bytes=usage.total, jetstream_used_bytes=used,
            jetstream_reserved_bytes=reserved,
            jetstream_used_ratio=round(used / reserved, 4) if used is not None and reserved
            else None)
        self._export(report)
        self.last = report
        return report

    def _export(self, r: StorageReport) -> None:
        DATA_FREE.labels(self.service).set(r.data_dir_free_bytes)
        DATA_SIZE.labels(self.service).set(r.data_dir_size_bytes)
        if r.jetstream_used_bytes is not None and r.jetstream_reserved_bytes is not None:
            JS_USED.labels(self.service).set(r.jetstream_used_bytes)
            JS_RESERVED.labels(self.service).set(r.jetstream_reserved_bytes)

    async def current(self) -> StorageReport:
        """The last measurement (health must answer fast), or a first one."""
        return self.last if self.last is not None else await self.measure()

    async def run(self) -> None:
        """Refresh the gauges until cancelled."""
        while True:
            try:
                await self.measure()
            except OSError as e:
                log.warning("cannot measure the data directory: %s", e)
            await asyncio.sleep(REFRESH_S)
