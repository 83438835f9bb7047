"""The worker-process pool for CPU-bound work, with kill-on-timeout and replacement.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop a call that is running, and a
killed worker breaks the whole pool. Here each worker is one process with one pipe; a call that
is cancelled (timeout, task cancellation, shutdown) SIGKILLs its worker, so a runaway Python
loop really stops, and a fresh worker takes its place. A reader thread per worker waits on the
pipe so the event loop never blocks on a large result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from services.executor import metrics
from services.executor.runtime.worker_main import worker_main
from shared.logs import swallowed

log = logging.getLogger(__name__)
T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]


class WorkerLost(Exception):
    """The worker process died while running a call (killed from outside, crashed, OOM)."""


class WorkerError(Exception):
    """An exception raised in a worker that could not be rebuilt in this process.

    Attributes:
        remote_type: the class name it had in the worker; remote_traceback: its traceback.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid = process.pid or 0
        self.job: asyncio.Future[Any] | None = None
        self.on_progress: ProgressCallback | None = None


class WorkerPool:
    """``size`` worker processes started from a fork server that preloads ``preload``.

    Args:
        size: number of worker processes (the CPU-bound concurrency of this executor).
        preload: modules the fork server imports once, so a replacement worker starts fast.
    """

    def __init__(self, size: int, *, preload: list[str] | None = None) -> None:
        self.size = size
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["services.executor.runtime.worker_main",
                                          *(preload or [])])
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: dict[int, _Worker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.replaced = 0
        metrics.WORKERS.set(size)

    @property
    def busy(self) -> int:
        return sum(1 for w in self._all.values() if w.job is not None)

    def pids(self) -> list[int]:
        return sorted(self._all)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        assert self._loop is not None
        worker = await self._loop.run_in_executor(None, self._start_process)
        if self._closing:
            self._kill(worker)
            return
        self._all[worker.pid] = worker
        threading.Thread(target=self._read, args=(worker,), daemon=True,
                         name=f"worker-{worker.pid}").start()
        self._idle.put_nowait(worker)

    def _start_process(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=worker_main, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _read(self, worker: _Worker) -> None:
        """Reader thread: pipe messages go back to the event loop."""
        assert self._loop is not None
        while True:
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError, pickle.UnpicklingError, TypeError):
                with contextlib.suppress(RuntimeError):  # loop closed at exit
                    self._loop.call_soon_threadsafe(self._on_lost, worker)
                return
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_message, worker, msg)

    def _on_message(self, worker: _Worker, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "progress":
            if worker.on_progress is not None:
                worker.on_progress(msg[1], msg[2])
            return
        job = worker.job
        if job is None or job.done():
            return
        if kind == "ok":
            job.set_result(msg[1])
        else:
            job.set_exception(_rebuild(*msg[1:]))

    def _on_lost(self, worker: _Worker) -> None:
        if worker.job is not None and not worker.job.done():
            code = worker.process.exitcode
            worker.job.set_exception(WorkerLost(f"worker process {worker.pid} died "
                                                f"(exit code {code})"))

    async def run(self, fn: Callable[..., T], args: tuple[Any, ...] = (),
                  kwargs: dict[str, Any] | None = None, *,
                  on_progress: ProgressCallback | None = None,
                  on_start: Callable[[int], None] | None = None) -> T:
        """Run ``fn`` in a free worker. Cancelling this coroutine kills the worker."""
        worker = await self._acquire()
        assert self._loop is not None
        job = worker.job = self._loop.create_future()
        worker.on_progress = on_progress
        self._utilisation()
        healthy = False
        try:
            if on_start is not None:
                on_start(worker.pid)
            worker.conn.send(("run", fn, args, kwargs or {}))
            result: T = await job
            healthy = True
            return result
        except BaseException as e:
            # An exception the call raised leaves its worker healthy; a cancellation (timeout,
            # cancel, shutdown), a lost worker or a call that would not pickle does not.
            healthy = (job.done() and not job.cancelled() and job.exception() is e
                       and not isinstance(e, WorkerLost))
            raise
        finally:
            worker.job = None
            worker.on_progress = None
            if healthy and worker.process.is_alive():
                self._idle.put_nowait(worker)
            else:
                self._replace(worker)
            self._utilisation()

    async def _acquire(self) -> _Worker:
        while True:
            worker = await self._idle.get()
            if worker.process.is_alive():
                return worker
            self._replace(worker)  # died while idle (killed from outside)

    def _replace(self, worker: _Worker) -> None:
        self._all.pop(worker.pid, None)
        self._kill(worker)
        metrics.WORKER_REPLACED.inc()
        self.replaced += 1
        if not self._closing:
            task = asyncio.get_running_loop().create_task(self._spawn())
            task.add_done_callback(_log_spawn_failure)

    def _kill(self, worker: _Worker) -> None:
        with swallowed(log, "killing the worker process"):
            worker.process.kill()
        with swallowed(log, "closing the worker pipe", level=logging.DEBUG):
            worker.conn.close()
        # Reap in a thread: join blocks until the kernel has delivered SIGKILL.
        threading.Thread(target=worker.process.join, args=(5,), daemon=True).start()

    def _utilisation(self) -> None:
        busy = self.busy
        metrics.WORKERS_BUSY.set(busy)
        metrics.WORKER_UTILISATION.set(busy / self.size if self.size else 0.0)

    async def close(self) -> None:
        self._closing = True
        for worker in list(self._all.values()):
            if worker.job is not None and not worker.job.done():
                worker.job.set_exception(WorkerLost("executor shutting down"))
            self._kill(worker)
        self._all.clear()


def _rebuild(type_name: str, message: str, tb: str, blob: bytes | None) -> BaseException:
    if blob is not None:
        with swallowed(log, "rebuilding the worker's exception", level=logging.DEBUG):
            exc = pickle.loads(blob)
            if isinstance(exc, BaseException):
                exc.add_note(f"raised in a worker process:\n{tb}")
                return exc
    return WorkerError(type_name, message, tb)


def _log_spawn_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not start a replacement worker", exc_info=task.exception())
