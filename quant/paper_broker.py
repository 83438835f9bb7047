"""The paper broker's arithmetic: fills, positions, cash and P&L, by the backtest's rules.

Convention (shared with ``quant.backtest`` and ``performance.trading_metrics``):

- A strategy's capital is split equally between its ``n`` symbols ("slots"). A *position* is a
  target exposure of a slot, -1..+1 (short, flat, long), decided at bar t's close from
  features that include bar t's close and volume.
- Fill price: bar t's close (``fill="close"``, the backtest's timing). At each fill the slot is
  sized on the equity marked at that bar: ``quantity = position * equity / n / price``.
- Costs: ``bps / 10_000`` of the slot's capital per unit of *position change*, charged at the
  fill. Drift of a held position between bars is re-sized without cost, as in the backtest.
- P&L: a quantity held from t to the symbol's next bar earns ``quantity * (close' - close)``.

So the equity marked at bar t+1 is ``E_t * (1 + sum(pos * ret) / n - cost_t)``: exactly one
period of the backtest's equity curve, which is what lets a live replay equal the backtest.
"""

from __future__ import annotations

import math

import msgspec


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One executed change of position (the paper broker fills every order in full)."""

    symbol: str
    timestamp: str
    from_position: float
    to_position: float
    price: float
    quantity: float  # signed shares traded
    cost: float  # in currency


class Book(msgspec.Struct, kw_only=True):
    """A strategy's account. Mutable on purpose: ``mark`` and ``fill`` advance it bar by bar;
    it is checkpointed as a whole after every bar.

    Attributes:
        capital: starting equity.
        slots: symbols sharing the capital (``n`` above).
        equity: marked at the last bar, after that bar's costs.
        positions: target exposure per symbol; quantities: shares held per symbol.
        closes: the last close seen per symbol (what held quantities are marked against).
    """

    capital: float = 1.0
    slots: int = 1
    equity: float = 1.0
    positions: dict[str, float] = {}
    quantities: dict[str, float] = {}
    closes: dict[str, float] = {}
    fees: float = 0.0
    peak: float = 1.0
    day: str = ""
    day_start: float = 1.0
    fills: int = 0

    @property
    def cash(self) -> float:
        """Equity minus the marked value of the held quantities (negative when leveraged)."""
        held = sum(q * self.closes.get(s, 0.0) for s, q in self.quantities.items())
        return self.equity - held

    @property
    def pnl(self) -> float:
        return self.equity - self.capital


def new_book(symbols: list[str], capital: float = 1.0) -> Book:
    """A flat book over ``symbols``."""
    if not symbols:
        raise ValueError("a strategy needs at least one symbol")
    if not math.isfinite(capital) or capital <= 0:
        raise ValueError(f"capital must be a positive number, got {capital}")
    return Book(capital=capital, slots=len(symbols), equity=capital, peak=capital,
                day_start=capital)


def mark(book: Book, closes: dict[str, float], day: str) -> float:
    """Mark held quantities to ``closes`` (the symbols with a bar now); returns the P&L.

    A new ``day`` resets the daily-loss reference to the equity before this mark.
    """
    if day != book.day:
        book.day, book.day_start = day, book.equity
    pnl = 0.0
    for symbol, close in closes.items():
        previous = book.closes.get(symbol)
        quantity = book.quantities.get(symbol, 0.0)
        if previous is not None and quantity:
            pnl += quantity * (close - previous)
        book.closes[symbol] = close
    book.equity += pnl
    book.peak = max(book.peak, book.equity)
    return pnl


def fill(book: Book, targets: dict[str, float], prices: dict[str, float], timestamp: str, *,
         cost_bps: float) -> list[Fill]:
    """Move every symbol in ``targets`` to its target position at ``prices`` (see module).

    All slots are sized on the equity before this bar's costs, as the backtest charges the
    costs of a period after its trades.
    """
    basis = book.equity
    slot = basis / book.slots
    fills: list[Fill] = []
    for symbol in sorted(targets):
        target, price = targets[symbol], prices[symbol]
        previous = book.positions.get(symbol, 0.0)
        before = book.quantities.get(symbol, 0.0)
        quantity = target * slot / price
        book.positions[symbol], book.quantities[symbol] = target, quantity
        if target == previous:
            continue
        cost = abs(target - previous) * slot * cost_bps / 10_000.0
        book.equity -= cost
        book.fees += cost
        fills.append(Fill(symbol=symbol, timestamp=timestamp, from_position=previous,
                          to_position=target, price=price, quantity=quantity - before,
                          cost=cost))
    book.fills += len(fills)
    return fills
