"""Token buckets with a fake clock: burst, refill, the wait it reports, and off at rate 0."""

from __future__ import annotations

import pytest

from services.gateway.auth.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_rate() -> None:
    clock = Clock()
    rl = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.take("a") == pytest.approx(0.5)  # one token at 2/s
    assert rl.wait_s("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert rl.wait_s("a") == 0.0
    assert rl.take("a") == 0.0
    assert rl.take("a") > 0


def test_callers_have_their_own_buckets_and_refill_caps_at_burst() -> None:
    clock = Clock()
    rl = RateLimiter(rate_per_s=1.0, burst=2, clock=clock)
    assert rl.take("a") == rl.take("a") == 0.0
    assert rl.take("a") > 0
    assert rl.take("b") == 0.0
    clock.now += 1000  # a long quiet spell still allows only a burst
    assert [rl.take("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_rate_zero_disables() -> None:
    rl = RateLimiter(rate_per_s=0, burst=1)
    assert all(rl.take("a") == 0.0 for _ in range(1000))
    assert rl.wait_s("a") == 0.0


def test_many_callers_forget_full_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    import services.gateway.auth.ratelimit as mod

    monkeypatch.setattr(mod, "_MAX_BUCKETS", 10)
    clock = Clock()
    rl = RateLimiter(rate_per_s=1.0, burst=1, clock=clock)
    for i in range(10):
        rl.take(f"ip{i}")
    clock.now += 5  # all full again
    rl.take("newcomer")
    assert len(rl._buckets) == 1
