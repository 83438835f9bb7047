"""Risk limits of a live strategy: pure checks on target positions and on the account.

Two kinds of limit:

- *Order limits* shape what is sent: a target beyond ``max_position`` is cut to it; if the gross
  exposure (mean absolute position over the slots) would exceed ``max_gross``, every target is
  scaled down by the same factor; orders beyond ``max_orders_per_s`` in a rolling second are
  refused (the position stays where it was).
- *Loss limits* stop the strategy: a daily loss beyond ``max_daily_loss`` or a drawdown from
  the equity peak beyond ``max_drawdown`` trips the kill switch, which flattens every position
  and refuses new ones until an operator restarts the strategy.

Each breach is reported as a ``Breach`` so that the runtime can publish it as an event.
"""

from __future__ import annotations

from collections import deque

import msgspec

from quant.paper_broker import Book


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of one strategy; ``None`` switches a limit off.

    Parameters:
        max_position: largest absolute exposure of one symbol's slot (1.0 = fully invested).
        max_gross: largest mean absolute exposure over all slots.
        max_daily_loss: largest fall of equity within a day, as a fraction of the day's start.
        max_drawdown: largest fall of equity from its peak, as a fraction of the peak.
        max_orders_per_s: most orders in any rolling second of wall-clock time.
    """

    max_position: float = 1.0
    max_gross: float = 1.0
    max_daily_loss: float | None = None
    max_drawdown: float | None = None
    max_orders_per_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_position", "max_gross"):
            if not 0.0 <= getattr(self, name) <= 10.0:
                raise ValueError(f"{name} must be in [0, 10], got {getattr(self, name)}")
        for name in ("max_daily_loss", "max_drawdown"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.max_orders_per_s is not None and self.max_orders_per_s <= 0:
            raise ValueError(f"max_orders_per_s must be positive, got {self.max_orders_per_s}")


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    """A limit that acted: which one, its value and the observed value."""

    limit: str
    threshold: float
    observed: float
    symbol: str = ""
    kill: bool = False


def limit_targets(targets: dict[str, float], limits: RiskLimits,
                  slots: int) -> tuple[dict[str, float], list[Breach]]:
    """Targets cut to ``max_position`` and scaled to ``max_gross``; the breaches that did it."""
    out: dict[str, float] = {}
    breaches: list[Breach] = []
    for symbol, target in targets.items():
        capped = max(-limits.max_position, min(limits.max_position, target))
        if capped != target:
            breaches.append(Breach(limit="max_position", threshold=limits.max_position,
                                   observed=abs(target), symbol=symbol))
        out[symbol] = capped
    gross = sum(abs(v) for v in out.values()) / max(slots, 1)
    if gross > limits.max_gross:
        breaches.append(Breach(limit="max_gross", threshold=limits.max_gross, observed=gross))
        scale = limits.max_gross / gross
        out = {s: v * scale for s, v in out.items()}
    return out, breaches


def loss_breach(book: Book, limits: RiskLimits) -> Breach | None:
    """The loss limit the account is beyond, if any (these trip the kill switch)."""
    if limits.max_daily_loss is not None and book.day_start > 0:
        loss = 1.0 - book.equity / book.day_start
        if loss > limits.max_daily_loss:
            return Breach(limit="max_daily_loss", threshold=limits.max_daily_loss,
                          observed=loss, kill=True)
    if limits.max_drawdown is not None and book.peak > 0:
        drawdown = 1.0 - book.equity / book.peak
        if drawdown > limits.max_drawdown:
            return Breach(limit="max_drawdown", threshold=limits.max_drawdown,
                          observed=drawdown, kill=True)
    return None


class OrderRate:
    """Admits at most ``per_s`` orders in any rolling second (``None``: no limit)."""

    def __init__(self, per_s: float | None) -> None:
        self.per_s = per_s
        self.sent: deque[float] = deque()

    def admit(self, now_s: float) -> bool:
        if self.per_s is None:
            return True
        while self.sent and now_s - self.sent[0] >= 1.0:
            self.sent.popleft()
        if len(self.sent) >= self.per_s:
            return False
        self.sent.append(now_s)
        return True
