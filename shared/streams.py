"""JetStream objects that more than one service relies on, defined once.

The EVENTS stream (``events.>``) is written by the registry, the executor and the quant tasks,
so whichever service starts first creates it, with this one configuration.
"""

from __future__ import annotations

from nats.js import JetStreamContext, api
from nats.js.errors import APIError, BadRequestError

from shared.settings import Settings
from shared.subjects import EVENTS_PREFIX, STAGING_PREFIX, Stream

DAY_S = 24 * 3600.0
_STREAM_IN_USE = 10058


def events_config(settings: Settings) -> api.StreamConfig:
    """Facts kept ``events_max_age_s`` (30 days) or ``events_max_bytes`` (1 GiB), whichever
    ends first, oldest dropped first; the duplicate window drops an event re-published after a
    crash (publishers set ``Nats-Msg-Id`` to the event id)."""
    return api.StreamConfig(
        name=Stream.EVENTS, subjects=[f"{EVENTS_PREFIX}.>"], retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE, max_age=settings.events_max_age_s,
        max_bytes=settings.events_max_bytes, discard=api.DiscardPolicy.OLD,
        # JetStream refuses a duplicate window longer than max_age.
        duplicate_window=min(120.0, settings.events_max_age_s),
        # Facts are history (the audit trail of tasks and models): they age out, nobody
        # erases them through the stream API (no rollup headers either: the default).
        deny_delete=True, deny_purge=True, num_replicas=settings.stream_replicas)


def staging_config(settings: Settings) -> api.StreamConfig:
    """Upload chunks (``shared.clients.staging``): no rollup headers, no message deletes (the
    uploaders publish here), kept at most ``upload_ttl_s``; full (``staging_max_bytes``), it
    refuses new chunks rather than dropping an upload in progress. Whoever copies an upload
    out (the registry, the state service for snapshot files) purges its subject. The registry
    keeps it up to date; the state service creates it if it starts first."""
    cfg = settings.registry
    return api.StreamConfig(
        name=Stream.STAGING, subjects=[f"{STAGING_PREFIX}.>"],
        retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE,
        max_age=cfg.upload_ttl_s, max_bytes=cfg.staging_max_bytes,
        discard=api.DiscardPolicy.NEW, allow_rollup_hdrs=False, deny_delete=True,
        num_replicas=settings.stream_replicas)


async def ensure_stream(js: JetStreamContext, config: api.StreamConfig, *,
                        update: bool) -> None:
    """Create ``config``'s stream; if it exists, bring it up to ``config`` only when ``update``
    (a stream another service owns is left as that service configured it)."""
    try:
        await js.add_stream(config)
    except (BadRequestError, APIError) as e:
        if e.err_code != _STREAM_IN_USE:
            raise
        if update:
            await js.update_stream(config)
