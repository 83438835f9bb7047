"""Ack decisions: retries, backoff, dead letters, error naming."""

from __future__ import annotations

import pytest

from services.executor.runtime import outcome
from services.executor.runtime.outcome import Ack
from services.executor.runtime.workers import WorkerError, WorkerLost
from shared.contracts.executor import TaskStatus
from shared.errors import ServiceUnavailable
from shared.tasks import Reject, Retry


def fail(e: BaseException, attempt: int = 1, max_attempts: int = 3,
         retry_on: tuple[type[BaseException], ...] = ()) -> outcome.Outcome:
    return outcome.failure(e, attempt=attempt, max_attempts=max_attempts, base_s=1.0,
                           max_s=10.0, retry_on=retry_on)


def test_backoff_doubles_is_capped_and_jittered() -> None:
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)):
        d = outcome.backoff_s(attempt, 1.0, 10.0)
        assert base <= d <= base * 1.2
    assert outcome.backoff_s(3, 0.0, 10.0) == 0.0


def test_retry_naks_with_backoff_until_the_last_attempt_then_dead() -> None:
    first = fail(Retry("flaky"), attempt=1)
    assert (first.status, first.ack) == (TaskStatus.QUEUED, Ack.NAK)
    assert 1.0 <= first.delay_s <= 1.2 and first.error is not None and first.error.retryable
    last = fail(Retry("flaky"), attempt=3)
    assert (last.status, last.ack) == (TaskStatus.DEAD, Ack.ACK)
    assert last.error is not None and last.error.message == "flaky"


def test_explicit_delay_wins() -> None:
    assert fail(Retry("later", delay_s=42.0)).delay_s == 42.0


def test_reject_and_unlisted_exceptions_fail_without_retry() -> None:
    for e in (Reject("bad"), ValueError("nope")):
        out = fail(e, retry_on=(ServiceUnavailable,))
        assert (out.status, out.ack) == (TaskStatus.FAILED, Ack.ACK)
        assert out.error is not None and not out.error.retryable


def test_retry_on_and_lost_workers_are_retryable() -> None:
    assert fail(ServiceUnavailable("down"), retry_on=(ServiceUnavailable,)).ack == Ack.NAK
    assert fail(WorkerLost("oom")).status == TaskStatus.QUEUED


@pytest.mark.parametrize(("exc", "name"), [
    (ValueError("x"), "ValueError"),
    (WorkerError("KeyError", "k", "tb"), "KeyError"),
])
def test_errors_are_named_after_the_original_exception(exc: BaseException, name: str) -> None:
    assert fail(exc).error.type == name  # type: ignore[union-attr]


def test_retry_from_a_cause_is_named_after_the_cause() -> None:
    try:
        try:
            raise ConnectionError("reset")
        except ConnectionError as e:
            raise Retry("try again") from e
    except Retry as r:
        out = fail(r)
    assert out.error is not None and out.error.type == "ConnectionError"


def test_terminal_helpers() -> None:
    assert outcome.timed_out(2.5).status == TaskStatus.TIMED_OUT
    assert outcome.cancelled("x").status == TaskStatus.CANCELLED
    back = outcome.handed_back("shutdown")
    assert (back.status, back.ack, back.delay_s) == (TaskStatus.QUEUED, Ack.NAK, 0.0)
