"""Task types the integration tests load into their executors (``QUANTOPS_EXECUTOR_PLUGINS``),
written the way a plugin package would: only ``shared.tasks`` is imported."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import msgspec

from shared.bus import Bus, Context
from shared.tasks import Endpoint, Plugin, TaskContext, report_progress, task


class CollectInput(msgspec.Struct, frozen=True, kw_only=True):
    value: Any = None


class SpinInput(msgspec.Struct, frozen=True, kw_only=True):
    seconds: float = 1.0
    #: How long a redelivery (attempt 2 and later) takes instead: a test that interrupts the
    #: first attempt (kill, shutdown) makes that one long and waits only for a short retry.
    retry_seconds: float | None = None

    def for_attempt(self, attempt: int) -> float:
        return self.seconds if attempt == 1 or self.retry_seconds is None else self.retry_seconds


class FanOutInput(msgspec.Struct, frozen=True, kw_only=True):
    children: int = 3


def spin(seconds: float) -> dict[str, int]:
    """A CPU loop in a worker process that reports progress."""
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if n % 200_000 == 0:
            report_progress(min(1.0, 1 - (deadline - time.monotonic()) / seconds), "spinning")
    return {"pid": os.getpid(), "loops": n}


@task("collect", input=CollectInput)
async def collect(inp: CollectInput, ctx: TaskContext) -> dict[str, Any]:
    """Return the input value and every parent's result (workflows)."""
    return {"value": inp.value, "parents": await ctx.parent_results(), "node": ctx.node}


@task("hybrid", input=SpinInput)
async def hybrid(inp: SpinInput, ctx: TaskContext) -> dict[str, Any]:
    """I/O, then CPU in a worker process, then I/O: the shape of a training task."""
    await ctx.progress(0.0, "starting")
    out = await ctx.run_in_process(spin, inp.for_attempt(ctx.attempt))
    return {"worker": out, "attempt": ctx.attempt}


def quiet_spin(seconds: float) -> int:
    """A CPU loop that reports nothing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return os.getpid()


@task("io_then_cpu", input=SpinInput)
async def io_then_cpu(inp: SpinInput, ctx: TaskContext) -> dict[str, Any]:
    """Running (I/O) for a moment before its CPU part starts, which reports no progress."""
    await asyncio.sleep(0.3)  # not a synchronisation: the task's I/O part
    return {"pid": await ctx.run_in_process(quiet_spin, inp.for_attempt(ctx.attempt))}


@task("nap", input=SpinInput)
async def nap(inp: SpinInput, ctx: TaskContext) -> dict[str, Any]:
    """``sleep`` with a different length for a redelivery (``retry_seconds``)."""
    seconds = inp.for_attempt(ctx.attempt)
    await asyncio.sleep(seconds)  # not a synchronisation: the task's work
    return {"slept_s": seconds, "attempt": ctx.attempt}


@task("fan_out", input=FanOutInput)
async def fan_out(inp: FanOutInput, ctx: TaskContext) -> dict[str, Any]:
    """Submit children (idempotently, by index) and wait for all of them: a sweep's shape."""
    ids = [await ctx.submit_child("noop", {"value": i}, key=f"child-{i}")
           for i in range(inp.children)]
    records = await ctx.wait_children(ids, timeout_s=30)
    return {"children": ids, "results": [r.result for r in records]}


class EchoRequest(msgspec.Struct, frozen=True, kw_only=True):
    text: str


class EchoReply(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    started: bool


_state = {"started": False}


async def _start(bus: Bus) -> None:
    _state["started"] = True  # e.g. warm a model cache, subscribe to promotion events


async def echo(req: EchoRequest, ctx: Context) -> EchoReply:
    return EchoReply(text=req.text, started=_state["started"])


#: What QUANTOPS_EXECUTOR_PLUGINS names: task types plus an endpoint and a start hook.
TASKS = Plugin(name="test-plugin", tasks=[collect, hybrid, io_then_cpu, nap, fan_out],
               endpoints=[Endpoint("executor.test.echo", echo, EchoRequest, role="viewer")],
               start=_start)
