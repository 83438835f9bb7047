"""Listing, summarising and purging status records: pure functions over scanned records.

The handlers read only a window (records written since a time: the server finds the first by
time) and, for activity, the unfinished tasks still in the queue; these functions order and
count what was read. Pages are ordered newest first by ``(submitted_at, id)``; the cursor is
the last item's key.
"""

from __future__ import annotations

import base64
import math
from bisect import bisect_left
from collections.abc import Iterable

from shared.contracts.executor import (
    FAILURES,
    TERMINAL,
    ActivityBucket,
    FailedSummary,
    FailureGroup,
    ListTasks,
    TaskActivity,
    TaskRecord,
    TaskStatus,
)
from shared.errors import InvalidRequest


def matches(r: TaskRecord, q: ListTasks) -> bool:
    if q.status and r.status not in q.status:
        return False
    if q.type and r.type != q.type:
        return False
    if q.workflow_id and r.workflow_id != q.workflow_id:
        return False
    if q.since is not None and r.submitted_at < q.since:
        return False
    return q.until is None or r.submitted_at < q.until


def _key(r: TaskRecord) -> tuple[float, str]:
    return (r.submitted_at, r.id)


def encode_cursor(r: TaskRecord) -> str:
    return base64.urlsafe_b64encode(f"{r.submitted_at!r}|{r.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        when, _, task_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return float(when), task_id
    except Exception as e:
        raise InvalidRequest("invalid cursor", details={"cursor": cursor}) from e


def page(records: Iterable[TaskRecord], q: ListTasks) -> tuple[list[TaskRecord], int, str]:
    """(items, total matching, next cursor) for one page of ``q``."""
    found = sorted((r for r in records if matches(r, q)), key=_key, reverse=True)
    start = 0
    if q.cursor:
        after = decode_cursor(q.cursor)
        start = next((i for i, r in enumerate(found) if _key(r) < after), len(found))
    items = found[start:start + q.limit]
    more = start + q.limit < len(found)
    return items, len(found), encode_cursor(items[-1]) if more and items else ""


def failed_summary(records: Iterable[TaskRecord], since: float, until: float) -> FailedSummary:
    """Failures (failed, timed out, dead) that finished in [since, until), by type and error."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    by_type: dict[str, int] = {}
    by_error: dict[str, int] = {}
    for r in records:
        finished = r.finished_at or r.updated_at
        if r.status not in FAILURES or not since <= finished < until:
            continue
        error_type = r.error.type if r.error else str(r.status)
        by_type[r.type] = by_type.get(r.type, 0) + 1
        by_error[error_type] = by_error.get(error_type, 0) + 1
        g = groups.get((r.type, error_type))
        if g is None or finished >= g.last_at:
            count = (g.count if g else 0) + 1
            groups[(r.type, error_type)] = FailureGroup(
                type=r.type, error_type=error_type, count=count, last_at=finished,
                last_message=r.error.message[:500] if r.error else "", sample_task_id=r.id)
        else:
            groups[(r.type, error_type)] = FailureGroup(
                type=g.type, error_type=g.error_type, count=g.count + 1, last_at=g.last_at,
                last_message=g.last_message, sample_task_id=g.sample_task_id)
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.type, g.error_type))
    return FailedSummary(since=since, until=until, total=sum(by_type.values()),
                         by_type=by_type, by_error=by_error, groups=ordered)


MAX_BUCKETS = 1000


class _Series:
    """Counts per bucket, and levels (queued, running) at each bucket's end kept as a
    difference array: an interval adds one to the ends it covers in O(log buckets)."""

    def __init__(self, since: float, bucket_s: float, n: int) -> None:
        self.since, self.bucket_s, self.n = since, bucket_s, n
        self.ends = [since + (i + 1) * bucket_s for i in range(n)]
        self.counts = {k: [0] * n for k in ("submitted", "started", "succeeded", "failed",
                                             "cancelled")}
        self.levels = {k: [0] * (n + 1) for k in ("queued", "running")}

    def count(self, kind: str, at: float | None) -> None:
        if at is not None and self.since <= at < self.ends[-1]:
            self.counts[kind][int((at - self.since) // self.bucket_s)] += 1

    def span(self, kind: str, begin: float | None, end: float) -> None:
        """Present from ``begin`` (inclusive) until ``end`` (exclusive)."""
        if begin is None or end <= begin:
            return
        diff = self.levels[kind]
        diff[bisect_left(self.ends, begin)] += 1
        diff[bisect_left(self.ends, end)] -= 1

    def buckets(self) -> list[ActivityBucket]:
        queued = running = 0
        out = []
        for i in range(self.n):
            queued += self.levels["queued"][i]
            running += self.levels["running"][i]
            out.append(ActivityBucket(start=self.since + i * self.bucket_s, queued=queued,
                                      running=running,
                                      **{k: v[i] for k, v in self.counts.items()}))
        return out


def _finish_kind(status: TaskStatus) -> str:
    if status in FAILURES:
        return "failed"
    return "succeeded" if status == TaskStatus.SUCCEEDED else "cancelled"


def _buckets(window_s: float, bucket_s: float) -> int:
    n = math.ceil(window_s / bucket_s)
    if n > MAX_BUCKETS:
        raise InvalidRequest(f"{n} buckets asked for, at most {MAX_BUCKETS}: use a larger "
                             "bucket_s", details={"window_s": window_s, "bucket_s": bucket_s})
    return n


def window_of(window_s: float, bucket_s: float) -> float:
    """The span ``activity`` covers: whole buckets, so at least ``window_s``."""
    return _buckets(window_s, bucket_s) * bucket_s


def activity(records: Iterable[TaskRecord], until: float, window_s: float,
             bucket_s: float) -> TaskActivity:
    """Per bucket of ``[until - window_s, until)``: submissions, starts and finishes, and the
    tasks queued and running at the bucket's end (a record's times say when it was waiting)."""
    n = _buckets(window_s, bucket_s)
    series = _Series(until - n * bucket_s, bucket_s, n)
    for r in records:
        finished = r.finished_at if r.status in TERMINAL else None
        series.count("submitted", r.submitted_at)
        series.count("started", r.started_at)
        if finished is not None:
            series.count(_finish_kind(r.status), finished)
        left_queue = min(t for t in (r.started_at, finished, math.inf) if t is not None)
        series.span("queued", r.submitted_at, left_queue)
        series.span("running", r.started_at, finished if finished is not None else math.inf)
    return TaskActivity(since=series.since, until=until, bucket_s=bucket_s,
                        buckets=series.buckets())


def purgeable(records: Iterable[TaskRecord], older_than: float,
              statuses: Iterable[TaskStatus] = ()) -> list[str]:
    """Ids of finished records whose finish time is before ``older_than``."""
    allowed = set(statuses) & TERMINAL if statuses else TERMINAL
    return [r.id for r in records
            if r.status in allowed and (r.finished_at or r.updated_at) < older_than]
