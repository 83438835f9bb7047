"""Temporary lockout of password login per user name, with backoff (as Keycloak does it).

The per-address bucket cannot stop one user's password being guessed from many addresses, and
behind an ingress every client has the same address, so it must not be what locks a user out.
Login attempts are therefore also counted per user name: after ``max_failures`` attempts that
did not succeed, the name is locked for ``lockout_s``, doubled by each further failure up to
``max_lockout_s``. A lock always ends; attempts made while locked are refused without argon2
and without counting, so hammering a locked name does not lengthen its lock. Failures are
forgotten after ``reset_s`` without one, and a successful login forgets them at once.

An attempt is counted *before* its password is checked (and forgiven on success): a burst of
concurrent guesses cannot all slip past the check while the first ones are still hashing.
Unknown names are counted exactly like known ones, so the answers (401, then 429 with
``Retry-After``) say nothing about which names exist. Only password login is locked: API keys,
access tokens and refresh tokens of the same user keep working, so an attacker can delay a
user's next password login by at most ``max_lockout_s`` at a time, never take the account away.

The counts are per gateway process: with N replicas a name gets N times the attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.errors import RateLimited

#: Names remembered at once; beyond it the names without a running lock are forgotten first.
MAX_NAMES: Final = 100_000


@dataclass(slots=True)
class _Failures:
    count: int
    last_s: float
    locked_until_s: float = 0.0


class LoginLockout:
    """Args:
        max_failures: failed attempts a name may take before it is locked; 0 turns this off.
        lockout_s: the first lock; each further failure doubles it.
        max_lockout_s: the longest lock.
        reset_s: failures are forgotten after this long without one.
        clock: monotonic seconds (a fake in unit tests).
    """

    def __init__(self, *, max_failures: int, lockout_s: float, max_lockout_s: float,
                 reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.max_lockout_s = max(lockout_s, max_lockout_s)
        self.reset_s = reset_s
        self.clock = clock
        self._names: dict[str, _Failures] = {}

    def attempt(self, name: str) -> None:
        """Count an attempt at ``name`` (or raise ``RateLimited`` if it is locked)."""
        if self.max_failures <= 0:
            return
        now = self.clock()
        entry = self._names.get(name)
        if entry is not None and now - entry.last_s > self.reset_s:
            entry = None
        if entry is not None and now < entry.locked_until_s:
            wait = entry.locked_until_s - now
            raise RateLimited("too many failed logins for this user name; retry after the "
                              "delay in Retry-After", details={"retry_after_s": round(wait, 3)})
        if entry is None:
            if len(self._names) >= MAX_NAMES:
                self._prune(now)
            entry = self._names[name] = _Failures(count=0, last_s=now)
        entry.count += 1
        entry.last_s = now
        over = entry.count - self.max_failures
        if over >= 0:
            lock_s = min(self.max_lockout_s, self.lockout_s * 2.0 ** min(over, 32))
            entry.locked_until_s = now + lock_s

    def succeeded(self, name: str) -> None:
        """The password was right: the counted attempt and every earlier failure are forgiven."""
        self._names.pop(name, None)

    def locked_for_s(self, name: str) -> float:
        """Seconds ``name`` stays locked (0.0: not locked)."""
        entry = self._names.get(name)
        return max(0.0, entry.locked_until_s - self.clock()) if entry else 0.0

    def _prune(self, now: float) -> None:
        """Forget names without a running lock, then (a flood of names) the oldest."""
        self._names = {k: v for k, v in self._names.items()
                       if v.locked_until_s > now and now - v.last_s <= self.reset_s}
        while len(self._names) >= MAX_NAMES:
            del self._names[next(iter(self._names))]
