"""How an attempt ended, and what that means for the task: the one place ack decisions are made.

    body returned              -> succeeded                      ack
    Retry / retryable error    -> queued again after a backoff   nak(delay)
        ... on the last attempt -> dead (dead-letter stream)      ack
    Reject / any other error   -> failed                         ack
    timeout                    -> timed_out                      ack
    cancelled                  -> cancelled                      ack
    executor shutting down     -> queued (handed back)           nak(0)

Backoff: ``base * 2 ** (attempt - 1)``, capped, with up to 20 % random jitter so a burst of
failures does not come back as a burst; ``Retry(delay_s=...)`` overrides it.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.executor.runtime.workers import WorkerError, WorkerLost
from shared.contracts.executor import TaskError, TaskStatus
from shared.tasks import Reject, Retry


class Ack(StrEnum):
    ACK = "ack"
    NAK = "nak"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one attempt: the status to record and what to do with the message."""

    status: TaskStatus
    ack: Ack = Ack.ACK
    delay_s: float = 0.0
    result: Any = None
    error: TaskError | None = None


def backoff_s(attempt: int, base_s: float, max_s: float, *, jitter: float = 0.2) -> float:
    delay = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return delay * (1 + random.uniform(0, jitter)) if delay > 0 else 0.0


def error_of(e: BaseException, *, retryable: bool) -> TaskError:
    """A task error named after the exception a person would look for."""
    if isinstance(e, Retry | Reject):
        cause = e.__cause__
        name = type(cause).__name__ if cause is not None else type(e).__name__
        return TaskError(type=name, message=e.reason or str(cause or ""), retryable=retryable)
    if isinstance(e, WorkerError):
        return TaskError(type=e.remote_type, message=str(e), retryable=retryable,
                         traceback=e.remote_traceback)
    tb = "".join(traceback.format_exception(e))[-4000:]
    return TaskError(type=type(e).__name__, message=str(e)[:2000], retryable=retryable,
                     traceback=tb)


def is_retryable(e: BaseException, retry_on: tuple[type[BaseException], ...]) -> bool:
    if isinstance(e, Retry | WorkerLost):
        return True
    if isinstance(e, Reject):
        return False
    return bool(retry_on) and isinstance(e, retry_on)


def failure(e: BaseException, *, attempt: int, max_attempts: int, base_s: float,
            max_s: float, retry_on: tuple[type[BaseException], ...]) -> Outcome:
    """The outcome of an attempt that raised ``e``."""
    retryable = is_retryable(e, retry_on)
    error = error_of(e, retryable=retryable)
    if not retryable:
        return Outcome(TaskStatus.FAILED, error=error)
    if attempt >= max_attempts:
        return Outcome(TaskStatus.DEAD, error=error)
    delay = e.delay_s if isinstance(e, Retry) and e.delay_s is not None else backoff_s(
        attempt, base_s, max_s)
    return Outcome(TaskStatus.QUEUED, ack=Ack.NAK, delay_s=delay, error=error)


def timed_out(timeout_s: float) -> Outcome:
    return Outcome(TaskStatus.TIMED_OUT, error=TaskError(
        type="timeout", message=f"stopped after its timeout of {timeout_s:g} s"))


def cancelled(reason: str) -> Outcome:
    return Outcome(TaskStatus.CANCELLED, error=TaskError(
        type="cancelled", message=reason or "cancelled"))


def handed_back(reason: str) -> Outcome:
    return Outcome(TaskStatus.QUEUED, ack=Ack.NAK, error=TaskError(
        type="requeued", message=reason, retryable=True))


def invalid(message: str) -> Outcome:
    return Outcome(TaskStatus.FAILED, error=TaskError(type="invalid_task", message=message))
