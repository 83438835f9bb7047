"""The JetStream objects the executor stands on, created idempotently at start-up.

- ``QUANTOPS_TASKS``: ``tasks.queue.<high|normal|low>.*``, work-queue retention (a message
  is gone once acked), file storage, ``max_msgs = max_queue`` with ``discard=new`` (the
  queue-length guard), ``duplicate_window`` (idempotency keys). Its settings follow the
  executor's on every start.
- Durable pull consumers ``executor-high|normal|low`` (filters ``tasks.queue.<priority>.*``),
  explicit ack, ``ack_wait``, unlimited deliveries (attempts are counted by the executor).
- ``QUANTOPS_TASKS_DEAD``: ``tasks.dead.>``, limits retention, ``dead_letter_max_age_s``.
- ``QUANTOPS_EVENTS``: ``events.>``, shared with the other services (``shared.streams``),
  limits from the settings.
- KV buckets ``quantops_task_status`` and ``quantops_workflows`` (history 1: the events stream
  keeps the history of status changes), made by ``shared.kvbuckets``: no rollups, purges or
  message deletes through the stream API, per-message TTLs allowed. A final task record
  carries ``Nats-TTL`` = ``record_ttl_s``, a finished workflow ``workflow_ttl_s``, and
  JetStream removes them by itself; a purged record or an undone workflow is replaced by a
  delete marker that expires too.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from services.executor.runtime.engine import consumer_name
from shared.contracts.executor import DEAD_LETTER_PREFIX, PRIORITIES, PriorityDepth, QueueDepth
from shared.kvbuckets import ensure_bucket
from shared.settings import ExecutorSettings, Settings
from shared.streams import ensure_stream, events_config
from shared.subjects import TASK_QUEUE_PREFIX, Bucket, Stream

log = logging.getLogger(__name__)


def tasks_config(settings: ExecutorSettings, replicas: int = 1) -> api.StreamConfig:
    return api.StreamConfig(
        # One subject per priority, so a task published with any other priority is refused
        # at once instead of waiting forever for a consumer that does not exist.
        name=Stream.TASKS, subjects=[f"{TASK_QUEUE_PREFIX}.{p}.*" for p in PRIORITIES],
        retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
        max_msgs=settings.max_queue, discard=api.DiscardPolicy.NEW,
        duplicate_window=settings.dedupe_window_s, max_msg_size=8 * 1024 * 1024,
        # Nothing purges the queue; a cancelled task's message is deleted by sequence, so
        # message deletes stay allowed (the executor's grant alone has them).
        deny_purge=True, num_replicas=replicas)


def dead_config(settings: ExecutorSettings, replicas: int = 1) -> api.StreamConfig:
    return api.StreamConfig(
        name=Stream.TASKS_DEAD, subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        retention=api.RetentionPolicy.LIMITS, storage=api.StorageType.FILE,
        max_age=settings.dead_letter_max_age_s,
        # JetStream refuses a duplicate window longer than max_age.
        duplicate_window=min(120.0, settings.dead_letter_max_age_s), num_replicas=replicas)


def consumer_config(settings: ExecutorSettings, priority: str) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=consumer_name(priority),  # type: ignore[arg-type]
        filter_subject=f"{TASK_QUEUE_PREFIX}.{priority}.*",
        ack_policy=api.AckPolicy.EXPLICIT, ack_wait=settings.ack_wait_s, max_deliver=-1,
        max_ack_pending=-1, max_waiting=4096, deliver_policy=api.DeliverPolicy.ALL)


async def ensure_all(js: JetStreamContext, all_settings: Settings
                     ) -> tuple[KeyValue, KeyValue]:
    """Streams, consumers and buckets; returns the (status, workflows) KV buckets."""
    settings, replicas = all_settings.executor, all_settings.stream_replicas
    await ensure_stream(js, tasks_config(settings, replicas), update=True)
    await ensure_stream(js, dead_config(settings, replicas), update=True)
    await ensure_stream(js, events_config(all_settings), update=True)
    for p in PRIORITIES:
        await js.add_consumer(Stream.TASKS, consumer_config(settings, p))
    status = await ensure_bucket(js, Bucket.TASK_STATUS, history=1, replicas=replicas,
                                 description="status record of every task")
    workflows = await ensure_bucket(js, Bucket.WORKFLOWS, history=1, replicas=replicas,
                                    description="state of every workflow")
    return status, workflows


async def queue_depth(js: JetStreamContext) -> QueueDepth:
    """The queue now, from each priority's consumer: ``num_pending`` (not yet delivered) and
    ``num_ack_pending`` (delivered, not yet acked). Three small requests, however many task
    records the status bucket holds."""
    depths = []
    for p in PRIORITIES:
        info = await js.consumer_info(Stream.TASKS, consumer_name(p))
        depths.append(PriorityDepth(priority=p, queued=info.num_pending or 0,
                                    in_flight=info.num_ack_pending or 0))
    return QueueDepth(priorities=depths, queued=sum(d.queued for d in depths),
                      in_flight=sum(d.in_flight for d in depths))
