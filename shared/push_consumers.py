"""Ephemeral JetStream push consumers, spoken directly.

nats-py's ``KeyValue`` hides the message headers a service stores next to each value
(encoding, schema version, TTL) and its ordered consumer gives no way to tell how fresh it is.
One-off scans (the state service's list, history and snapshot) and the long-lived ordered feeds
(``shared.kvfeed``) need exactly that, so this module talks the consumer API itself: create an
ephemeral consumer that pushes to an inbox, read the sequence metadata from each message's reply
subject, answer flow control, and delete the consumer when done.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from shared.errors import QuantopsError, ServiceUnavailable
from shared.logs import swallowed

log = logging.getLogger(__name__)

STATUS: Final = "Status"
HEARTBEAT_STATUS: Final = "100"
LAST_CONSUMER: Final = "Nats-Last-Consumer"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a pushed message sits: its stream and consumer sequence, its time (epoch
    seconds) and how many messages the consumer still had to deliver after it."""

    stream_seq: int
    consumer_seq: int
    timestamp: float
    pending: int


def delivery(reply: str) -> Delivery | None:
    """Parse ``$JS.ACK.<stream>.<consumer>.<n>.<sseq>.<cseq>.<ts>.<pending>`` (v1) or the v2
    form with domain and account hash."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        i = 5
    elif len(tokens) >= 11:
        i = 7
    else:
        return None
    return Delivery(int(tokens[i]), int(tokens[i + 1]), int(tokens[i + 2]) / 1e9,
                    int(tokens[i + 3]))


def is_status(msg: Msg) -> bool:
    return not msg.data and bool(msg.headers) and STATUS in msg.headers  # type: ignore[operator]


def consumer_config(
    deliver_subject: str, filter_subject: str, *, deliver_policy: str, start_seq: int = 0,
    headers_only: bool = False, heartbeat_s: float = 5.0,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "deliver_subject": deliver_subject,
        "deliver_policy": deliver_policy,
        "ack_policy": "none",
        "replay_policy": "instant",
        "filter_subject": filter_subject,
        "flow_control": True,
        "idle_heartbeat": int(heartbeat_s * 1e9),
        "headers_only": headers_only,
        "mem_storage": True,
        "num_replicas": 1,
        # The server removes a consumer whose reader vanished (a killed replica).
        "inactive_threshold": int(max(10.0, heartbeat_s * 4) * 1e9),
    }
    if deliver_policy == "by_start_sequence":
        config["opt_start_seq"] = start_seq
    return config


async def create(nc: NATS, stream: str, config: dict[str, Any], *, timeout_s: float
                 ) -> dict[str, Any]:
    """Create an ephemeral consumer; returns the server's consumer info."""
    body = json.dumps({"stream_name": stream, "config": config}).encode()
    try:
        reply = await nc.request(f"$JS.API.CONSUMER.CREATE.{stream}", body, timeout=timeout_s)
    except Exception as e:
        raise ServiceUnavailable(f"cannot create a consumer on {stream}: {e}",
                                 details={"stream": stream}) from e
    info: dict[str, Any] = json.loads(reply.data)
    if "error" in info:
        raise refused(stream, info["error"])
    return info


def refused(stream: str, error: dict[str, Any]) -> QuantopsError:
    """The error for a JetStream API error reply about ``stream``."""
    return QuantopsError(f"JetStream refused a request on {stream}: "
                         f"{error.get('description', error)}")


async def delete(nc: NATS, stream: str, name: str) -> None:
    """Best effort: an undeleted ephemeral consumer expires by its inactive threshold."""
    with swallowed(log, "deleting an ephemeral consumer", level=logging.DEBUG):
        await nc.publish(f"$JS.API.CONSUMER.DELETE.{stream}.{name}", b"")


async def answer_flow_control(nc: NATS, msg: Msg) -> None:
    """A status message with a reply subject is a flow-control request: answering it lets the
    server keep pushing."""
    if msg.reply:
        with swallowed(log, "answering a flow-control request"):
            await nc.publish(msg.reply, b"")
