"""A linearizability checker for a compare-and-set register, in the manner of Jepsen's Knossos.

A history is the operations clients saw: each with when it was invoked, when its reply came
back (``None``: it never did; a timeout, whose effect is unknown) and what it returned. The
history is linearizable when there is one total order of the operations that (a) respects
real time: an operation that returned before another was invoked comes first, and (b) replays
on a single register to exactly the results the clients saw.

The search is the Wing-Gong algorithm with Lowe's memoisation (what porcupine implements):
walk the invocation/return events in time order; at an invocation, try to linearize that
operation now; at a return whose operation was never linearized, backtrack. Configurations
already explored (set of linearized operations, register value) are cached, which keeps
histories of a few thousand operations on a handful of clients tractable. An operation with
an unknown outcome returns "at infinity", so it may take effect at any point after its
invocation or (placed last) not at all. Histories of different keys are checked separately:
linearizability is compositional.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    READ = "read"
    WRITE = "write"
    CAS = "cas"


@dataclass(frozen=True)
class Op:
    """One client operation on the register.

    Args:
        kind: read, write (``value``), or cas (``expected`` -> ``value``).
        invoked_s, returned_s: monotonic times; ``returned_s`` None when no reply came.
        value: the value a write or CAS writes, or the value a read returned.
        expected: what a CAS compares the register with.
        ok: whether a CAS succeeded (None: unknown, with ``returned_s`` None).
    """

    kind: Kind
    invoked_s: float
    returned_s: float | None
    value: Any = None
    expected: Any = None
    ok: bool | None = True

    @property
    def end_s(self) -> float:
        return math.inf if self.returned_s is None else self.returned_s


def step(state: Any, op: Op) -> tuple[bool, Any]:
    """Apply ``op`` to a register holding ``state``: (consistent with what the client saw,
    the new state)."""
    match op.kind:
        case Kind.READ:
            return op.value == state, state
        case Kind.WRITE:
            return True, op.value
        case Kind.CAS:
            matches = state == op.expected
            if op.ok is None:  # unknown outcome: if it took effect, it succeeded here
                return True, op.value if matches else state
            return matches == op.ok, op.value if matches and op.ok else state
    raise ValueError(f"unknown operation kind {op.kind!r}")


def _relevant(ops: Iterable[Op]) -> list[Op]:
    # A read that never returned observed nothing; it constrains no order.
    return [op for op in ops if not (op.kind is Kind.READ and op.returned_s is None)]


def _event_list(history: list[Op]) -> tuple[list[int], list[int], list[bool], list[int],
                                             list[int]]:
    """The invocation/return events as a doubly linked list (slot 0 is the head sentinel):
    next, previous, is-return and operation of each slot, and each invocation's return slot."""
    # Invocations sort before returns at equal times, treating touching operations as
    # concurrent (the permissive reading).
    events = sorted([(op.invoked_s, 0, i) for i, op in enumerate(history)]
                    + [(op.end_s, 1, i) for i, op in enumerate(history)])
    size = len(events) + 1
    nxt = [*range(1, size), -1]
    prv = list(range(-1, size - 1))
    is_return = [False] + [bool(e[1]) for e in events]
    op_of = [-1] + [e[2] for e in events]
    match = [0] * size
    call_slot: dict[int, int] = {}
    for slot in range(1, size):
        if is_return[slot]:
            match[call_slot[op_of[slot]]] = slot
        else:
            call_slot[op_of[slot]] = slot
    return nxt, prv, is_return, op_of, match


class BudgetExceeded(Exception):
    """The search explored more configurations than it was allowed: no verdict."""


def check(ops: Iterable[Op], initial: Any = None, *, budget: int | None = None) -> bool:
    """True when the register history ``ops`` (starting at ``initial``) is linearizable.

    ``budget`` bounds the configurations explored (the search is exponential in the worst
    case, for example with many operations of unknown outcome open at once); past it,
    ``BudgetExceeded`` is raised rather than a verdict guessed."""
    history = _relevant(ops)
    if not history:
        return True
    nxt, prv, is_return, op_of, match = _event_list(history)

    def unlink(slot: int) -> None:
        for s in (slot, match[slot]):
            nxt[prv[s]] = nxt[s]
            if nxt[s] != -1:
                prv[nxt[s]] = prv[s]

    def relink(slot: int) -> None:
        for s in (match[slot], slot):
            nxt[prv[s]] = s
            if nxt[s] != -1:
                prv[nxt[s]] = s

    state = initial
    linearized = 0
    seen: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any]] = []
    slot = nxt[0]
    while nxt[0] != -1:
        if slot != -1 and not is_return[slot]:
            i = op_of[slot]
            consistent, new_state = step(state, history[i])
            key = (linearized | (1 << i), new_state)
            if consistent and key not in seen:
                seen.add(key)
                if budget is not None and len(seen) > budget:
                    raise BudgetExceeded(f"more than {budget} configurations explored")
                stack.append((slot, state))
                linearized, state = key
                unlink(slot)
                slot = nxt[0]
            else:
                slot = nxt[slot]
            continue
        # A return whose operation is not linearized yet (or the end): undo the last choice.
        if not stack:
            return False
        slot, state = stack.pop()
        linearized &= ~(1 << op_of[slot])
        relink(slot)
        slot = nxt[slot]
    return True
