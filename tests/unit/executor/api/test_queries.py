"""Listing filters and pages, failure summaries, purge selection."""

from __future__ import annotations

import pytest

from services.executor.api import queries
from shared.contracts.executor import ListTasks, TaskError, TaskRecord, TaskStatus
from shared.errors import InvalidRequest


def rec(i: int, status: TaskStatus = TaskStatus.SUCCEEDED, type_: str = "noop",
        error: str = "", finished: float | None = None) -> TaskRecord:
    return TaskRecord(id=f"t{i:03d}", type=type_, status=status, submitted_at=float(i),
                      finished_at=finished if finished is not None else float(i) + 0.5,
                      error=TaskError(type=error, message=f"m{i}") if error else None)


RECORDS = [rec(i, TaskStatus.FAILED if i % 3 == 0 else TaskStatus.SUCCEEDED,
               "fail" if i % 3 == 0 else "noop", "Boom" if i % 3 == 0 else "")
           for i in range(10)]


def test_pages_are_newest_first_and_cover_everything_once() -> None:
    seen: list[str] = []
    cursor = ""
    while True:
        items, total, cursor = queries.page(RECORDS, ListTasks(limit=4, cursor=cursor))
        assert total == 10
        seen += [r.id for r in items]
        if not cursor:
            break
    assert seen == [f"t{i:03d}" for i in reversed(range(10))]


def test_filters() -> None:
    q = ListTasks(status=[TaskStatus.FAILED], type="fail", since=1.0, until=9.0)
    items, total, _ = queries.page(RECORDS, q)
    assert [r.id for r in items] == ["t006", "t003"] and total == 2


def test_bad_cursor() -> None:
    with pytest.raises(InvalidRequest):
        queries.page(RECORDS, ListTasks(cursor="!!!"))


def test_failed_summary_groups_by_type_and_error_in_the_window() -> None:
    recs = [*RECORDS, rec(20, TaskStatus.TIMED_OUT, "burn", "timeout"),
            rec(21, TaskStatus.DEAD, "fail", "Boom"), rec(22, TaskStatus.CANCELLED)]
    s = queries.failed_summary(recs, since=3.0, until=100.0)
    assert s.total == 5  # t003, t006, t009 failed, t020 timed out, t021 dead; cancels don't count
    assert s.by_type == {"fail": 4, "burn": 1} and s.by_error == {"Boom": 4, "timeout": 1}
    top = s.groups[0]
    assert (top.type, top.error_type, top.count) == ("fail", "Boom", 4)
    assert top.sample_task_id == "t021" and top.last_message == "m21"


def test_purgeable_keeps_unfinished_and_recent() -> None:
    recs = [rec(1), rec(2, TaskStatus.RUNNING, finished=0.0), rec(50),
            rec(3, TaskStatus.FAILED, error="X")]
    assert queries.purgeable(recs, older_than=10.0) == ["t001", "t003"]
    assert queries.purgeable(recs, 10.0, [TaskStatus.FAILED]) == ["t003"]


def test_activity_counts_per_bucket_and_levels_at_bucket_ends() -> None:
    # Buckets of 10 s over [0, 40): ends at 10, 20, 30, 40.
    records = [
        # queued 5..25, running 25..35, succeeded at 35
        TaskRecord(id="a", type="noop", status=TaskStatus.SUCCEEDED, submitted_at=5.0,
                   started_at=25.0, finished_at=35.0),
        # queued before the window (at -50) and still waiting
        TaskRecord(id="b", type="noop", status=TaskStatus.QUEUED, submitted_at=-50.0),
        # cancelled while queued at 12: never started
        TaskRecord(id="c", type="noop", status=TaskStatus.CANCELLED, submitted_at=11.0,
                   finished_at=12.0),
        # still running since 15
        TaskRecord(id="d", type="noop", status=TaskStatus.RUNNING, submitted_at=14.0,
                   started_at=15.0),
        TaskRecord(id="e", type="fail", status=TaskStatus.DEAD, submitted_at=1.0,
                   started_at=2.0, finished_at=3.0),
    ]
    out = queries.activity(records, until=40.0, window_s=40.0, bucket_s=10.0)
    assert [b.start for b in out.buckets] == [0.0, 10.0, 20.0, 30.0]
    assert [b.submitted for b in out.buckets] == [2, 2, 0, 0]
    assert [b.started for b in out.buckets] == [1, 1, 1, 0]
    assert [b.succeeded for b in out.buckets] == [0, 0, 0, 1]
    assert [b.failed for b in out.buckets] == [1, 0, 0, 0]
    assert [b.cancelled for b in out.buckets] == [0, 1, 0, 0]
    assert [b.queued for b in out.buckets] == [2, 2, 1, 1]  # a until 25; b throughout
    assert [b.running for b in out.buckets] == [0, 1, 2, 1]  # d from 15; a 25..35


def test_activity_refuses_too_many_buckets() -> None:
    with pytest.raises(InvalidRequest):
        queries.activity([], until=0.0, window_s=1001.0, bucket_s=1.0)
