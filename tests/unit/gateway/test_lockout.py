"""Password-login lockout per user name, with a fake clock: free failures, a lock that doubles
up to its ceiling and always ends, no counting while locked, forgiveness on success or quiet."""

from __future__ import annotations

import pytest

from services.gateway.auth.lockout import LoginLockout
from shared.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lockout(clock: Clock, **over: float) -> LoginLockout:
    args: dict[str, float] = {"max_failures": 3, "lockout_s": 10.0, "max_lockout_s": 35.0,
                              "reset_s": 1000.0, **over}
    return LoginLockout(max_failures=int(args["max_failures"]), lockout_s=args["lockout_s"],
                        max_lockout_s=args["max_lockout_s"], reset_s=args["reset_s"], clock=clock)


def _locked(lock: LoginLockout, name: str) -> bool:
    try:
        lock.attempt(name)
    except RateLimited:
        return True
    return False


def test_the_lock_doubles_up_to_its_ceiling_and_always_ends() -> None:
    clock = Clock()
    lock = _lockout(clock)
    assert [_locked(lock, "u") for _ in range(3)] == [False] * 3  # the third locks, checked
    waits = []
    for _ in range(4):
        waits.append(lock.locked_for_s("u"))
        assert _locked(lock, "u")
        clock.now += lock.locked_for_s("u")
        assert not _locked(lock, "u")  # one more guess after each lock, which locks again
    assert waits == pytest.approx([10.0, 20.0, 35.0, 35.0])


def test_attempts_while_locked_do_not_lengthen_the_lock() -> None:
    clock = Clock()
    lock = _lockout(clock)
    for _ in range(3):
        lock.attempt("u")
    for _ in range(1000):
        assert _locked(lock, "u")
    assert lock.locked_for_s("u") == pytest.approx(10.0)


def test_names_are_independent_and_success_or_quiet_forgives() -> None:
    clock = Clock()
    lock = _lockout(clock)
    for _ in range(3):
        lock.attempt("victim")
    assert _locked(lock, "victim") and not _locked(lock, "bystander")
    lock.attempt("ok")
    lock.attempt("ok")
    lock.succeeded("ok")
    assert [_locked(lock, "ok") for _ in range(3)] == [False] * 3
    clock.now += 1001  # quiet for longer than reset_s: the count starts again
    assert [_locked(lock, "victim") for _ in range(3)] == [False] * 3


def test_refused_with_retry_after_and_off_at_zero() -> None:
    clock = Clock()
    lock = _lockout(clock, max_failures=1)
    lock.attempt("u")
    with pytest.raises(RateLimited) as refused:
        lock.attempt("u")
    assert refused.value.details["retry_after_s"] == 10.0
    off = _lockout(clock, max_failures=0)
    for _ in range(100):
        off.attempt("u")
