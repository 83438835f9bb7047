"""The dashboard's task queries as the records kept grow: window reads against the whole scan.

    python -m bench.bench_queries [--old 20000] [--recent 200] [--rounds 5]

A private nats-server with the executor's streams and buckets; ``--old`` finished records
written first (outside the window), then ``--recent`` ones and a few queued tasks. Each row
times one query, median of ``--rounds``, side by side with the whole scan every dashboard
refresh used to make (``StatusStore.scan()``, what activity and the queue panel read):

- queue depth from the consumers' counters (``queue_depth``) vs scanning for queued records;
- activity's read (records written in the last minute, plus the tasks still queued) vs the
  whole scan.

The ratio to the whole scan, in the same run, is the figure that carries over; run it with
``--old`` at two sizes to see which rows grow with the records kept.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import msgspec
import nats
import uvloop

from bench.common import start_server
from services.executor.storage.store import StatusStore
from services.executor.storage.streams import ensure_all, queue_depth
from shared.contracts.executor import TaskMessage, TaskRecord, TaskStatus
from shared.settings import Settings
from shared.subjects import TASK_QUEUE_PREFIX, Bucket

encode = msgspec.json.Encoder().encode


async def _fill(nc: nats.NATS, count: int, status: TaskStatus) -> None:
    js, now = nc.jetstream(), time.time()
    for start in range(0, count, 500):
        acks = []
        for _ in range(min(500, count - start)):
            task_id = uuid.uuid4().hex
            record = TaskRecord(id=task_id, type="noop", status=status, submitted_at=now,
                                updated_at=now, finished_at=now)
            acks.append(js.publish(f"$KV.{Bucket.TASK_STATUS}.{task_id}", encode(record)))
        await asyncio.gather(*acks)


async def _timed(op: object, rounds: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        size = await op()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, size


async def main(old: int, recent: int, rounds: int) -> None:
    server = start_server()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        status_kv, _ = await ensure_all(js, Settings.from_env({}))
        store = StatusStore(js, status_kv, Bucket.TASK_STATUS)
        await _fill(nc, old, TaskStatus.SUCCEEDED)
        await asyncio.sleep(1.1)  # the window below starts after every old record
        since = time.time()
        await _fill(nc, recent, TaskStatus.SUCCEEDED)
        for _ in range(5):  # a few queued tasks (no consumer takes them here)
            task_id = uuid.uuid4().hex
            await js.publish(f"{TASK_QUEUE_PREFIX}.normal.{task_id}",
                             encode(TaskMessage(type="noop")))

        async def whole_scan() -> int:
            return len([r async for r in store.scan()])

        async def queued_by_scan() -> int:
            return len([r async for r in store.scan() if r.status == TaskStatus.QUEUED])

        async def depth() -> int:
            return (await queue_depth(js)).queued

        async def window() -> int:
            return len(await store.written_or_unfinished(since))

        base_ms, base_n = await _timed(whole_scan, rounds)
        rows = [("whole scan (baseline: every record)", base_ms, base_n),
                ("queue depth by scanning for queued", *await _timed(queued_by_scan, rounds)),
                ("queue depth from consumer counters", *await _timed(depth, rounds)),
                ("activity read: window + queue", *await _timed(window, rounds))]
        print(f"{old} old records, {recent} in the window, median of {rounds}")
        print(f"{'query':<40} {'ms':>9} {'answer':>8} {'vs scan':>8}")
        for name, ms, n in rows:
            print(f"{name:<40} {ms:>9.2f} {n:>8} {ms / base_ms:>7.3f}x")
        await nc.close()
    finally:
        server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=int, default=20000)
    p.add_argument("--recent", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    uvloop.run(main(a.old, a.recent, a.rounds))
