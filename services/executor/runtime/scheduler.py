"""Which delivered task starts next: strict priority with a starvation guard.

The rule (docs/executor.md, "Priorities"):

1. A free slot goes to the highest priority with a task waiting in this process: high before
   normal before low.
2. Every time a class is passed over for a higher one while it has a task waiting, its skip
   count grows; once normal's reaches ``starvation_limit`` (K), or low's reaches 2K, that class
   takes the next slot and its count resets. With every class backed up that is, per cycle,
   about 2K high, 2 normal and 1 low starts: high dominates, normal beats low, and a waiting
   low task starts after at most 2K + 2 others, so nothing waits forever.
3. A lower class does not start while a higher class is known (from the server's pending count)
   to have tasks on their way to this process: the scheduler holds for at most ``hold_s`` so a
   fast stream of high tasks cannot let a normal one slip in between deliveries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from shared.contracts.executor import PRIORITIES, Priority

T = TypeVar("T")


class PriorityScheduler(Generic[T]):
    """Per-priority FIFO buffers of delivered tasks and the pick rule above.

    Args:
        starvation_limit: K, how many times a waiting lower class may be passed over.
        hold_s: longest wait for an expected higher-priority delivery.
    """

    def __init__(self, starvation_limit: int, hold_s: float = 0.05) -> None:
        self.limit = starvation_limit
        self.hold_s = hold_s
        self.buffers: dict[Priority, deque[T]] = {p: deque() for p in PRIORITIES}
        # Tasks the server still holds for each class; None until the class first reports.
        self.upstream: dict[Priority, int | None] = dict.fromkeys(PRIORITIES)
        self.skipped: dict[Priority, int] = dict.fromkeys(PRIORITIES, 0)
        self._hold_since: float | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, priority: Priority, item: T, pending: int | None = None) -> None:
        self.buffers[priority].append(item)
        self._size += 1
        if pending is not None:
            self.upstream[priority] = pending

    def note_empty(self, priority: Priority) -> None:
        """The server said nothing more of this class is waiting."""
        self.upstream[priority] = 0

    def hold_deadline(self) -> float | None:
        """When a held pick must be retried (the dispatcher sets a timer), if holding."""
        return None if self._hold_since is None else self._hold_since + self.hold_s

    def pick(self, now: float) -> tuple[Priority, T] | None:
        if not self._size:
            return None
        waiting = [p for p in PRIORITIES if self.buffers[p]]
        chosen = self._starving(waiting)
        if chosen is None:
            chosen = waiting[0]
            if self._expecting_higher(chosen, now):
                return None
        for p in waiting:
            if PRIORITIES.index(p) > PRIORITIES.index(chosen):
                self.skipped[p] += 1
        self.skipped[chosen] = 0
        self._hold_since = None
        self._size -= 1
        return chosen, self.buffers[chosen].popleft()

    def _starving(self, waiting: list[Priority]) -> Priority | None:
        for p in reversed(waiting[1:]):
            if self.skipped[p] >= self.limit * PRIORITIES.index(p):  # normal K, low 2K
                return p
        return None

    def _expecting_higher(self, chosen: Priority, now: float) -> bool:
        for p in PRIORITIES:
            if p == chosen:
                return False
            pending = self.upstream[p]
            if pending is None or pending > 0:
                break
        else:
            return False
        if self._hold_since is None:
            self._hold_since = now
        return now - self._hold_since < self.hold_s

    def remove(self, match: Callable[[T], bool]) -> list[T]:
        """Take out every buffered item ``match`` accepts (a cancelled task)."""
        out: list[T] = []
        for p, buf in self.buffers.items():
            keep = deque(i for i in buf if not match(i))
            if len(keep) != len(buf):
                out.extend(i for i in buf if match(i))
                self.buffers[p] = keep
        self._size -= len(out)
        return out

    def drain(self) -> list[T]:
        out = [i for p in PRIORITIES for i in self.buffers[p]]
        for buf in self.buffers.values():
            buf.clear()
        self._size = 0
        return out

    def __iter__(self) -> Iterator[T]:
        for p in PRIORITIES:
            yield from self.buffers[p]
