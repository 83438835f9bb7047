"""The consuming side of one executor process: pullers, slots, the reaper, cancellation, and
graceful shutdown.

- Three pullers (one durable consumer per priority, shared by every executor process) feed the
  priority scheduler; a free slot takes the next task by the scheduler's rule.
- ``concurrency`` tasks run at once; at most ``4 x concurrency + 16`` messages are held (buffered,
  running, or waiting for their final record to be durable) so a slow status write pushes back
  on consumption instead of piling up.
- The reaper (every 100 ms) stops tasks past their deadline; every ``ack_wait / 3`` it sends
  ``in_progress`` for every held message, so a long task is not redelivered while its executor
  lives, and is redelivered ``ack_wait`` after its executor dies.
- ``events.task.cancel_requested.*`` reaches every executor: a held task is dropped (recorded
  ``cancelled`` without starting), a running one is stopped (its worker killed if it has one).
- SIGTERM: stop pulling, hand back buffered tasks, let running ones finish for the grace
  period, then stop them and hand them back (nak) for another executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from services.executor import metrics
from services.executor.runtime.puller import Puller
from services.executor.runtime.runner import SHUTDOWN, TIMEOUT, Run, Runner, Runtime
from services.executor.runtime.scheduler import PriorityScheduler
from shared.bus import Bus
from shared.contracts.executor import (
    CANCEL_REQUESTED,
    PRIORITIES,
    CancelRequested,
    Priority,
    task_event_subject,
)
from shared.logs import swallowed
from shared.settings import ExecutorSettings
from shared.subjects import Stream

if TYPE_CHECKING:
    from services.executor.api.deadletters import DeadLetters
    from services.executor.api.submission import Submitter
    from services.executor.api.workflows import Workflows
    from services.executor.runtime.workers import WorkerPool
    from services.executor.storage.statuswriter import StatusWriter
    from services.executor.storage.store import StatusStore
    from services.executor.tasktypes import TaskRegistry

log = logging.getLogger(__name__)

_decode_cancel = msgspec.json.Decoder(CancelRequested).decode
REAP_INTERVAL_S = 0.1
CANCEL_MEMORY_S = 600.0


def consumer_name(priority: Priority) -> str:
    return f"executor-{priority}"


class Engine:
    """Consumes, schedules and runs tasks. It builds the ``Runtime`` its runs share, wired to
    its own slot release and cancellation memory, from the executor's parts."""

    def __init__(self, *, bus: Bus, settings: ExecutorSettings, registry: TaskRegistry,
                 writer: StatusWriter, store: StatusStore, submitter: Submitter,
                 dead_letters: DeadLetters, workflows: Workflows, pool: WorkerPool,
                 instance: str, tracing: bool = False) -> None:
        s = settings
        self.cancelled: dict[str, float] = {}
        self.rt = rt = Runtime(bus=bus, settings=s, registry=registry, writer=writer,
                               store=store, submitter=submitter, dead_letters=dead_letters,
                               workflows=workflows, pool=pool, instance=instance,
                               release=self._release, is_cancelled=self.cancelled.__contains__,
                               tracing=tracing)
        self.concurrency = s.concurrency
        # Running + buffered (up to concurrency + 1 of one class, 1 of each other) + awaiting
        # their final record: generous enough that lower classes never use up a higher one's.
        self.max_held = 4 * s.concurrency + 16
        self.scheduler: PriorityScheduler[Run] = PriorityScheduler(s.starvation_limit)
        self.runner = Runner(rt)
        self.runs: dict[str, Run] = {}
        # Messages this process holds, by id(): nats-py's Msg is an unhashable dataclass.
        self.held: dict[int, Msg] = {}
        self.running = 0
        self.stopping = False
        self.pullers: list[Puller] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._cancel_sub: Subscription | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        metrics.SLOTS.set(self.concurrency)

    async def start(self) -> None:
        nc = self.rt.bus.nc
        self._cancel_sub = await nc.subscribe(task_event_subject(CANCEL_REQUESTED, "*"),
                                              cb=self._on_cancel_requested)
        for p in PRIORITIES:
            puller = Puller(nc, stream=Stream.TASKS, consumer=consumer_name(p), priority=p,
                            want=self.want, on_message=self.on_message,
                            on_empty=self.on_empty)
            await puller.start()
            self.pullers.append(puller)
        self._reaper = asyncio.create_task(self._reap(), name="reaper")

    # -- consumption --------------------------------------------------------------------

    def want(self, priority: Priority) -> int:
        """How many more messages of ``priority`` this process should ask for now."""
        if self.stopping:
            return 0
        room = self.max_held - len(self.held)
        higher_busy = any(self.scheduler.buffers[p] for p in PRIORITIES[:PRIORITIES.index(
            priority)])
        # A lower class keeps one task at hand for the starvation guard, no more, while a
        # higher class has work: the rest stays on the server for other executors.
        base = 1 if higher_busy else self.concurrency - self.running + 1
        return max(0, min(base, room) - len(self.scheduler.buffers[priority]))

    def on_message(self, priority: Priority, msg: Msg) -> None:
        if self.stopping:
            # Sent before the server saw us withdraw: back to the queue, with a short delay so
            # it cannot bounce back into our own request in the meantime.
            self._spawn(msg.nak(delay=1.0))
            return
        self.held[id(msg)] = msg
        run = Run(priority, msg)
        self.scheduler.push(priority, run, run.pending)
        self.pump()

    def on_empty(self, priority: Priority) -> None:
        self.scheduler.note_empty(priority)
        self.pump()

    def pump(self) -> None:
        while self.running < self.concurrency:
            picked = self.scheduler.pick(time.monotonic())
            if picked is None:
                self._arm_hold_timer()
                break
            self._launch(picked[1])
        for p in self.pullers:
            p.wake()

    def _arm_hold_timer(self) -> None:
        if self._hold_timer is not None:
            return
        deadline = self.scheduler.hold_deadline()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._hold_timer = None
            self.pump()

        self._hold_timer = loop.call_later(max(0.0, deadline - time.monotonic()), fire)

    def _launch(self, run: Run) -> None:
        self.running += 1
        self.runs[run.task_id] = run
        task = run.body = asyncio.get_running_loop().create_task(self.runner.execute(run))
        task.add_done_callback(lambda _t: self._on_run_done(run))

    def _on_run_done(self, run: Run) -> None:
        self.running -= 1
        if self.runs.get(run.task_id) is run:
            del self.runs[run.task_id]
        if self.running == 0:
            self._idle.set()
        if not self.stopping:
            self.pump()

    def _release(self, run: Run) -> None:
        """The message is being acked or nakked: it no longer counts against ``max_held``."""
        self.held.pop(id(run.msg), None)
        if not self.stopping:
            for p in self.pullers:
                p.wake()

    # -- cancellation --------------------------------------------------------------------

    async def _on_cancel_requested(self, msg: Msg) -> None:
        task_id = msg.subject.rpartition(".")[2]
        try:
            reason = _decode_cancel(msg.data).reason
        except msgspec.DecodeError:
            reason = ""
        self.cancel_local(task_id, f"cancelled: {reason}" if reason else "cancelled")

    def cancel_local(self, task_id: str, reason: str) -> None:
        self.cancelled[task_id] = time.monotonic()
        run = self.runs.get(task_id)
        if run is not None:
            run.cancel(reason)
            return
        for buffered in self.scheduler.remove(lambda r: r.task_id == task_id):
            self._launch(buffered)  # the runner sees the cancellation and records it

    # -- reaper and heartbeats -------------------------------------------------------------

    async def _reap(self) -> None:
        heartbeat_every = max(0.5, self.rt.settings.ack_wait_s / 3)
        next_heartbeat = time.monotonic() + heartbeat_every
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            now = time.monotonic()
            for run in list(self.runs.values()):
                if run.deadline is not None and now >= run.deadline:
                    run.cancel(TIMEOUT)
            if now >= next_heartbeat:
                next_heartbeat = now + heartbeat_every
                await self._heartbeat()
                self._forget_old_cancels(now)
            metrics.SLOTS_BUSY.set(self.running)
            metrics.flush()

    async def _heartbeat(self) -> None:
        for msg in list(self.held.values()):
            with swallowed(log, "a heartbeat (in_progress) of a held task"):
                await msg.in_progress()

    def _forget_old_cancels(self, now: float) -> None:
        for task_id, at in list(self.cancelled.items()):
            if now - at > CANCEL_MEMORY_S:
                del self.cancelled[task_id]

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(self, grace_s: float) -> None:
        self.stopping = True
        for p in self.pullers:
            await p.stop()  # no request of ours remains on the server after this
        for run in self.scheduler.drain():
            self.held.pop(id(run.msg), None)
            with swallowed(log, "handing a queued task back (nak)"):
                await run.msg.nak()
        if self.running:
            log.info("waiting for running tasks", extra={"running": self.running,
                                                          "grace_s": grace_s})
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
        for run in list(self.runs.values()):
            run.cancel(SHUTDOWN)
        if self.running:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 5.0)
        await self.rt.writer.flush()
        await self._close()

    async def _close(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._cancel_sub is not None:
            with swallowed(log, "unsubscribing from cancellations", level=logging.DEBUG):
                await self._cancel_sub.unsubscribe()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stats(self) -> dict[str, object]:
        return {"running": self.running, "buffered": len(self.scheduler),
                "held": len(self.held), "concurrency": self.concurrency}
