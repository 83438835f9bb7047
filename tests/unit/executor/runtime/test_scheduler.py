"""The priority rule, on its own: strict order, the starvation guard, the hold."""

from __future__ import annotations

import itertools

from services.executor.runtime.scheduler import PriorityScheduler
from shared.contracts.executor import Priority

H, N, L = Priority.HIGH, Priority.NORMAL, Priority.LOW


def known(s: PriorityScheduler[str]) -> PriorityScheduler[str]:
    for p in (H, N, L):
        s.note_empty(p)
    return s


def drain(s: PriorityScheduler[str], now: float = 0.0) -> list[str]:
    out = []
    while (picked := s.pick(now)) is not None:
        out.append(picked[1])
    return out


def test_strict_order_when_nothing_starves() -> None:
    s = known(PriorityScheduler[str](starvation_limit=100))
    for p, name in ((L, "l1"), (N, "n1"), (H, "h1"), (L, "l2"), (H, "h2")):
        s.push(p, name)
    assert drain(s) == ["h1", "h2", "n1", "l1", "l2"]
    assert len(s) == 0


def test_low_gets_a_turn_after_2k_passes_and_never_waits_longer() -> None:
    k = 4
    s = known(PriorityScheduler[str](starvation_limit=k))
    for i in range(40):
        s.push(H, f"h{i}")
    s.push(L, "l0")
    order = []
    low_next = 1
    while (picked := s.pick(0.0)) is not None:
        order.append(picked[0])
        if picked[0] == L and low_next < 10:  # keep one low task waiting, like the puller does
            s.push(L, f"l{low_next}")
            low_next += 1
    assert order[:2 * k] == [H] * (2 * k) and order[2 * k] == L
    gaps = [i for i, p in enumerate(order) if p == L]
    assert len(gaps) == 10 and all(b - a <= 2 * k + 1 for a, b in itertools.pairwise(gaps))


def test_every_class_gets_a_share_when_all_are_backed_up() -> None:
    k = 3
    s = known(PriorityScheduler[str](starvation_limit=k))
    for i in range(30):
        for p in (H, N, L):
            s.push(p, f"{p}{i}")
    first = [s.pick(0.0)[0] for _ in range(40)]  # type: ignore[index]
    assert first[:k] == [H] * k and first[k] == N
    windows = {N: k + 2, L: 2 * k + 2}  # the longest a waiting class goes without a start
    for p, w in windows.items():
        assert all(p in first[i:i + w] for i in range(0, 40 - w))
    assert first.count(H) > first.count(N) > first.count(L) > 0


def test_a_lower_class_waits_briefly_for_an_expected_higher_delivery() -> None:
    s = PriorityScheduler[str](starvation_limit=10, hold_s=0.05)
    s.note_empty(N)
    s.note_empty(L)
    s.push(H, "h1", pending=3)  # the server has 3 more high tasks on their way
    s.push(N, "n1", pending=0)
    assert s.pick(0.0) == (H, "h1")
    assert s.pick(0.01) is None  # a high one is expected: hold
    assert s.hold_deadline() == 0.01 + 0.05
    assert s.pick(0.02) is None
    assert s.pick(0.07) == (N, "n1")  # the hold is bounded


def test_unknown_upstream_holds_until_the_class_reports() -> None:
    s = PriorityScheduler[str](starvation_limit=10)
    s.push(L, "l1", pending=0)
    assert s.pick(0.0) is None  # high and normal have not answered yet
    s.note_empty(H)
    s.note_empty(N)
    assert s.pick(0.001) == (L, "l1")


def test_remove_and_drain() -> None:
    s = known(PriorityScheduler[str](starvation_limit=10))
    for p, name in ((H, "a"), (N, "b"), (L, "c")):
        s.push(p, name)
    assert s.remove(lambda x: x == "b") == ["b"]
    assert len(s) == 2 and sorted(s) == ["a", "c"]
    assert s.drain() == ["a", "c"] and len(s) == 0 and s.pick(0.0) is None
