"""The market-data stream: bars on ``bars.<symbol>``, one JetStream stream, deduplicated.

Every bar carries ``Nats-Msg-Id: <symbol>@<ISO timestamp>``: JetStream itself drops a copy
published again within the duplicate window (a feed reconnecting, a replay restarted), and the
PubAck says so. Older copies, late and out-of-order bars are the consumer's job
(``quant.bar_gate``), since only the consumer knows what it has already applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from nats.js import JetStreamContext, api

from shared import telemetry
from shared.contracts.quant import Bar
from shared.streams import ensure_stream
from shared.subjects import BARS_PREFIX, Header, Stream, bar_subject

_encoder = msgspec.json.Encoder()
bar_decoder = msgspec.json.Decoder(Bar)


def bars_config(*, max_age_s: float, duplicate_window_s: float,
                replicas: int = 1) -> api.StreamConfig:
    return api.StreamConfig(
        name=Stream.BARS, subjects=[f"{BARS_PREFIX}.>"], retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE, max_age=max_age_s, discard=api.DiscardPolicy.OLD,
        duplicate_window=duplicate_window_s, num_replicas=replicas)


async def ensure_bars_stream(js: JetStreamContext, *, max_age_s: float = 30 * 86400.0,
                             duplicate_window_s: float = 120.0) -> None:
    await ensure_stream(js, bars_config(max_age_s=max_age_s,
                                        duplicate_window_s=duplicate_window_s), update=False)


def bar_time(timestamp: datetime) -> str:
    """The ISO form every component keys a bar by (tz-naive UTC, like the frames)."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC).replace(tzinfo=None)
    return timestamp.isoformat()


def bar_id(bar: Bar) -> str:
    return f"{bar.symbol}@{bar_time(bar.timestamp)}"


@dataclass
class PublishStats:
    published: int = 0
    duplicates: int = 0


async def publish_bar(js: JetStreamContext, bar: Bar, stats: PublishStats | None = None) -> bool:
    """Publish one bar with its dedupe id and trace context; False if JetStream had it."""
    headers = telemetry.inject({Header.MSG_ID.value: bar_id(bar)})
    ack = await js.publish(bar_subject(bar.symbol), _encoder.encode(bar), headers=dict(headers))
    if stats is not None:
        stats.published += 1
        stats.duplicates += bool(ack.duplicate)
    return not ack.duplicate
