"""Prometheus metrics of the executor (served on the process's metrics port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge(
    "quantops_executor_queue_depth",
    "Tasks waiting in the queue stream (not yet delivered), by priority.", ["priority"])
STARTED = Counter(
    "quantops_executor_tasks_started_total", "Task attempts started, by type.", ["type"])
FINISHED = Counter(
    "quantops_executor_tasks_finished_total",
    "Task attempts finished, by type and outcome (succeeded, failed, timed_out, cancelled, "
    "dead, retried, requeued).", ["type", "outcome"])
DURATION = Histogram(
    "quantops_executor_task_duration_seconds", "Run time of one attempt, by type.", ["type"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600))
TIMEOUTS = Counter("quantops_executor_timeouts_total", "Attempts stopped by their timeout.",
                   ["type"])
RETRIES = Counter("quantops_executor_retries_total", "Attempts handed back for a retry.",
                  ["type"])
DEAD_LETTERS = Counter("quantops_executor_dead_letters_total",
                       "Tasks moved to the dead-letter stream.", ["type"])
SLOTS_BUSY = Gauge("quantops_executor_slots_busy", "Tasks running in this process.")
SLOTS = Gauge("quantops_executor_slots", "Concurrency limit of this process.")
WORKERS_BUSY = Gauge("quantops_executor_workers_busy", "Worker processes running a job.")
WORKERS = Gauge("quantops_executor_workers", "Worker processes in the pool.")
WORKER_UTILISATION = Gauge("quantops_executor_worker_utilisation",
                           "Busy fraction of the worker pool (0..1).")
WORKER_REPLACED = Counter("quantops_executor_workers_replaced_total",
                          "Worker processes killed (timeout, cancel) or lost, and replaced.")
STATUS_WRITE_ERRORS = Counter("quantops_executor_status_write_errors_total",
                              "Status-record writes that failed and were retried.")


class TypeMetrics:
    """Per task type: labelled children cached, and counts kept as plain ints that ``flush``
    (every 100 ms, from the engine's reaper) adds to the counters: at thousands of tasks a
    second, a Prometheus update per task is measurable cost."""

    __slots__ = ("duration", "finished", "pending_finished", "pending_started", "started", "type")

    def __init__(self, type_name: str) -> None:
        self.type = type_name
        self.started = STARTED.labels(type_name)
        self.duration = DURATION.labels(type_name)
        self.finished: dict[str, Counter] = {}
        self.pending_started = 0
        self.pending_finished: dict[str, int] = {}

    def start(self) -> None:
        self.pending_started += 1

    def finish(self, outcome: str, seconds: float | None) -> None:
        self.pending_finished[outcome] = self.pending_finished.get(outcome, 0) + 1
        if seconds is not None:
            self.duration.observe(seconds)

    def flush(self) -> None:
        if self.pending_started:
            self.started.inc(self.pending_started)
            self.pending_started = 0
        for outcome, n in self.pending_finished.items():
            counter = self.finished.get(outcome)
            if counter is None:
                counter = self.finished[outcome] = FINISHED.labels(self.type, outcome)
            counter.inc(n)
        self.pending_finished.clear()


_by_type: dict[str, TypeMetrics] = {}


def for_type(type_name: str) -> TypeMetrics:
    found = _by_type.get(type_name)
    if found is None:
        found = _by_type[type_name] = TypeMetrics(type_name)
    return found


def flush() -> None:
    for m in list(_by_type.values()):
        m.flush()
