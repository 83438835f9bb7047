"""Built-in task types: ``noop``, ``sleep``, ``fail`` and ``cpu_burn`` (for tests and benches)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated, Any

import msgspec

from shared.tasks import Retry, TaskContext, TaskKind, TaskType, report_progress, task

Seconds = Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)]


class NoopInput(msgspec.Struct, frozen=True, kw_only=True):
    value: Any = None


class SleepInput(msgspec.Struct, frozen=True, kw_only=True):
    seconds: Seconds = 1.0


class FailInput(msgspec.Struct, frozen=True, kw_only=True):
    """Fail the first ``fail_attempts`` attempts (all of them by default), then succeed."""

    message: str = "failed on purpose"
    retryable: bool = False
    fail_attempts: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000
    delay_s: Seconds | None = None


class CpuBurnInput(msgspec.Struct, frozen=True, kw_only=True):
    seconds: Seconds = 1.0


class FailedOnPurpose(Exception):
    """The error a non-retryable ``fail`` raises."""


class TransientFailure(Exception):
    """The error a retryable ``fail`` raises (in the type's ``retry_on``)."""


@task("noop", input=NoopInput)
async def noop(inp: NoopInput, ctx: TaskContext) -> Any:
    """Do nothing; return the input's ``value``."""
    return inp.value


@task("sleep", input=SleepInput)
async def sleep(inp: SleepInput, ctx: TaskContext) -> dict[str, float]:
    """Sleep in the event loop (an I/O-bound task)."""
    await asyncio.sleep(inp.seconds)
    return {"slept_s": inp.seconds}


@task("fail", input=FailInput, retry_on=(TransientFailure,))
async def fail(inp: FailInput, ctx: TaskContext) -> dict[str, int]:
    """Fail, retryably or not, for the first ``fail_attempts`` attempts."""
    if ctx.attempt > inp.fail_attempts:
        return {"succeeded_on_attempt": ctx.attempt}
    if inp.retryable and inp.delay_s is not None:
        raise Retry(inp.message, delay_s=inp.delay_s)
    raise (TransientFailure if inp.retryable else FailedOnPurpose)(inp.message)


def burn(inp: CpuBurnInput) -> dict[str, int]:
    """A pure-Python loop for ``seconds`` (a runaway loop when the timeout is shorter)."""
    deadline = time.monotonic() + inp.seconds
    loops = 0
    next_report = time.monotonic() + 1.0
    while (now := time.monotonic()) < deadline:
        loops += 1
        if now >= next_report:
            report_progress(1 - (deadline - now) / max(inp.seconds, 1e-9), f"{loops} loops")
            next_report = now + 1.0
    return {"loops": loops, "pid": os.getpid()}


cpu_burn: TaskType[CpuBurnInput] = TaskType(
    name="cpu_burn", input=CpuBurnInput, run=burn, kind=TaskKind.CPU,
    description="Burn CPU in a worker process for `seconds`.")

TASKS = [noop, sleep, fail, cpu_burn]
