"""Token buckets, one per principal (or per client IP for anonymous callers).

A bucket holds at most ``burst`` tokens and refills at ``rate_per_s``; a request takes one.
Only the numbers are kept (two floats per caller), refilled lazily when the caller shows up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_MAX_BUCKETS = 100_000


class RateLimiter:
    """Args:
        rate_per_s: refill rate; 0 turns the limiter off.
        burst: bucket size, the most requests accepted at once after a quiet spell.
        clock: monotonic seconds (a fake in tests).
    """

    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, updated)

    def take(self, who: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds until they would be there."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, updated = self._buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens < cost:
            self._buckets[who] = (tokens, now)
            return (cost - tokens) / self.rate
        if len(self._buckets) >= _MAX_BUCKETS and who not in self._buckets:
            self._prune(now)
        self._buckets[who] = (tokens - cost, now)
        return 0.0

    def wait_s(self, who: str, cost: float = 1.0) -> float:
        """What ``take`` would answer, without taking anything."""
        if self.rate <= 0 or who not in self._buckets:
            return 0.0
        tokens, updated = self._buckets[who]
        tokens = min(self.burst, tokens + (self.clock() - updated) * self.rate)
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget full buckets: a forgotten caller starts full, which is the same thing."""
        self._buckets = {k: (t, u) for k, (t, u) in self._buckets.items()
                         if t + (now - u) * self.rate < self.burst}
