"""Bars from a live feed put in order: duplicates and late bars dropped and counted, and the
symbols' bars grouped by timestamp for a strategy that trades them together.

A feed may repeat a bar (a reconnect re-sends it) or deliver one after a newer bar of the same
symbol (out of order). Features are computed incrementally and cannot be rewound, so a bar at
or before a symbol's newest one is never applied: an equal timestamp counts as a *duplicate*,
an older one as *late*. A timestamp is *complete* once every symbol has a bar for it, or once
any symbol has moved past it (a symbol without that bar then simply has none, and its bar
arriving afterwards is late).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

B = TypeVar("B")


@dataclass
class BarGate(Generic[B]):
    """Args:
    symbols: the symbols traded together.
    """

    symbols: frozenset[str]
    latest: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict[str, B]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    completed: str = ""

    def offer(self, symbol: str, timestamp: str, bar: B) -> list[tuple[str, dict[str, B]]]:
        """Accept one bar (ISO ``timestamp``); returns the timestamps it completed, oldest first,
        each with its bars by symbol."""
        if symbol not in self.symbols:
            self.counts["ignored"] += 1
            return []
        newest = self.latest.get(symbol)
        if newest is not None and timestamp <= newest:
            self.counts["duplicate" if timestamp == newest else "late"] += 1
            return []
        if timestamp <= self.completed:  # its timestamp was already traded without it
            self.counts["late"] += 1
            return []
        self.latest[symbol] = timestamp
        self.counts["accepted"] += 1
        self.pending.setdefault(timestamp, {})[symbol] = bar
        return self._complete()

    def _complete(self) -> list[tuple[str, dict[str, B]]]:
        done: list[tuple[str, dict[str, B]]] = []
        for timestamp in sorted(self.pending):
            bars = self.pending[timestamp]
            everyone = len(bars) == len(self.symbols)
            passed = any(t > timestamp for t in self.latest.values())
            if not (everyone or passed):
                break
            done.append((timestamp, self.pending.pop(timestamp)))
            self.completed = timestamp
        return done
