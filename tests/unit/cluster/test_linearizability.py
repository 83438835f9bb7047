"""The CAS-register checker on histories whose verdict is known (tests/cluster/linearizability)."""

from __future__ import annotations

import random

import pytest

from tests.cluster.linearizability import BudgetExceeded, Kind, Op, check


def read(t0: float, t1: float | None, value: object) -> Op:
    return Op(Kind.READ, t0, t1, value=value)


def write(t0: float, t1: float | None, value: object) -> Op:
    return Op(Kind.WRITE, t0, t1, value=value)


def cas(t0: float, t1: float | None, expected: object, value: object, ok: bool | None) -> Op:
    return Op(Kind.CAS, t0, t1, value=value, expected=expected, ok=ok)


def test_empty_and_sequential_histories_are_linearizable() -> None:
    assert check([])
    assert check([write(0, 1, 1), read(2, 3, 1), cas(4, 5, 1, 2, True), read(6, 7, 2)])


def test_a_stale_read_after_a_completed_write_is_not() -> None:
    # The write returned before the read began: the read must see it.
    assert not check([write(0, 1, 1), read(2, 3, None)])
    # Overlapping, either value is fine.
    assert check([write(0, 3, 1), read(1, 2, None)])
    assert check([write(0, 3, 1), read(1, 2, 1)])


def test_two_successful_cas_from_the_same_value_are_not() -> None:
    # A lost update: both clients read 0 and both CASes 0 -> 1 claim success.
    assert not check([cas(0, 2, 0, 1, True), cas(1, 3, 0, 1, True)], initial=0)
    assert check([cas(0, 2, 0, 1, True), cas(1, 3, 0, 1, False)], initial=0)


def test_a_failed_cas_must_have_had_a_reason() -> None:
    assert not check([cas(0, 1, 0, 1, False)], initial=0)
    assert check([cas(0, 1, 5, 6, False)], initial=0)


def test_a_read_cannot_go_back_in_time() -> None:
    # Overlapping increments; a later read sees 2, a still later one sees 1 again.
    history = [cas(0, 5, 0, 1, True), cas(1, 6, 1, 2, True), read(7, 8, 2), read(9, 10, 1)]
    assert not check(history, initial=0)
    assert check(history[:3], initial=0)


def test_reordering_inside_overlap_is_found() -> None:
    # Two overlapping writes; reads inside them saw 1 then 2: only the order w1, w2 explains
    # it, and the checker must find it among the interleavings. Seeing 1 again after 2 cannot
    # be explained by any order.
    writes = [write(0, 10, 2), write(1, 9, 1)]
    assert check([*writes, read(2, 3, 1), read(4, 5, 2), read(11, 12, 2)])
    assert not check([*writes, read(2, 3, 1), read(4, 5, 2), read(6, 7, 1)])
    assert not check([*writes, read(2, 3, 1), read(4, 5, 2), read(11, 12, 1)])


def test_unknown_outcomes_may_or_may_not_have_happened() -> None:
    # A timed-out CAS that took effect (a later read sees it) ...
    assert check([cas(0, None, 0, 1, None), read(5, 6, 1)], initial=0)
    # ... or that did not (a later read sees the old value).
    assert check([cas(0, None, 0, 1, None), read(5, 6, 0)], initial=0)
    # But it cannot take effect before it was invoked.
    assert not check([read(0, 1, 1), cas(2, None, 0, 1, None)], initial=0)
    # A read that never returned constrains nothing.
    assert check([read(0, None, 42)], initial=0)


def test_a_long_valid_concurrent_history_is_accepted_quickly() -> None:
    """Eight clients incrementing by CAS against a simulated atomic register: linearizable by
    construction, and large enough that a search without memoisation would not finish."""
    rng = random.Random(7)
    value, now, ops = 0, 0.0, []
    for _ in range(400):
        now += rng.random()
        seen = value
        t_read = now
        ops.append(read(t_read, t_read + rng.random() * 3, seen))
        # Linearization point at `now`; invoked up to 2 s before, returned up to 2 s after.
        ok = rng.random() < 0.7
        if ok:
            value = seen + 1
        expected = seen if ok else seen - 1
        ops.append(cas(now - rng.random() * 2, now + rng.random() * 2, expected,
                       expected + 1, ok))
    # The reads claim their value over an interval starting at the linearization point.
    assert check(ops, initial=0)
    # Corrupt one read in the middle to a value never held at that time: rejected.
    i = next(i for i in range(len(ops) // 2, len(ops)) if ops[i].kind is Kind.READ)
    bad = [*ops[:i], read(ops[i].invoked_s, ops[i].returned_s, -5), *ops[i + 1:]]
    assert not check(bad, initial=0)


def test_a_search_past_its_budget_gives_no_verdict() -> None:
    # Twelve overlapping writes never returned, then a read of a value nobody wrote: every
    # subset and order of the writes is tried before "no".
    history = [write(i, None, i) for i in range(12)] + [read(20, 21, -1)]
    with pytest.raises(BudgetExceeded):
        check(history, budget=1000)
    assert not check(history)
