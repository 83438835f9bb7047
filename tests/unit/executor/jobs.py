"""Functions the worker-pool tests run in worker processes (importable by name)."""

from __future__ import annotations

import os
import signal
import time

from shared.tasks import Retry, report_progress


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def spin_forever() -> None:
    while True:
        pass


def raise_value_error(text: str) -> None:
    raise ValueError(text)


def raise_retry() -> None:
    raise Retry("again", delay_s=3.0)


def raise_unpicklable() -> None:
    class Local(Exception):
        pass

    raise Local("made inside a function")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def with_progress(steps: int) -> str:
    for i in range(steps):
        report_progress((i + 1) / steps, f"step {i + 1}")
        time.sleep(0.01)  # not a synchronisation: the job's work between reports
    return "done"


def unsendable() -> object:
    return lambda: None
