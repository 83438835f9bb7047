"""Duplicate, late and out-of-order bars are dropped and counted; timestamps complete once."""

from __future__ import annotations

from quant.bar_gate import BarGate


def test_timestamps_complete_when_every_symbol_has_its_bar() -> None:
    gate: BarGate[int] = BarGate(frozenset({"A", "B"}))
    assert gate.offer("A", "2020-01-01", 1) == []
    assert gate.offer("B", "2020-01-01", 2) == [("2020-01-01", {"A": 1, "B": 2})]


def test_duplicates_and_late_bars_are_counted_not_applied() -> None:
    gate: BarGate[int] = BarGate(frozenset({"A", "B"}))
    gate.offer("A", "2020-01-01", 1)
    assert gate.offer("A", "2020-01-01", 9) == []  # duplicate
    gate.offer("B", "2020-01-01", 2)
    # A moves on before B's 01-02 arrives: 01-02 completes without B once A reaches 01-03.
    gate.offer("A", "2020-01-02", 3)
    assert gate.offer("A", "2020-01-03", 4) == [("2020-01-02", {"A": 3})]
    assert gate.offer("B", "2020-01-02", 5) == []  # its timestamp was already traded: late
    assert gate.offer("A", "2019-12-31", 0) == []  # out of order: late
    assert gate.offer("Z", "2020-01-03", 0) == []
    assert gate.counts == {"accepted": 4, "duplicate": 1, "late": 2, "ignored": 1}
    assert gate.offer("B", "2020-01-03", 6) == [("2020-01-03", {"A": 4, "B": 6})]
