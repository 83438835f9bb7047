"""The time formats JetStream uses in headers: RFC 3339 with nanoseconds, Go durations."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@lru_cache(maxsize=4096)
def _whole_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp + "+00:00").timestamp()


def parse_time(text: str) -> float:
    """``2026-01-02T03:04:05.123456789Z`` -> epoch seconds (nanoseconds kept as a fraction)."""
    if text.endswith("Z"):
        whole, _, frac = text[:-1].partition(".")
        return _whole_seconds(whole) + (float("0." + frac) if frac else 0.0)
    return datetime.fromisoformat(text).timestamp()


def parse_duration_s(text: str) -> float:
    """A ``Nats-TTL`` value: plain seconds (``"30"``) or a Go duration (``"1m30s"``)."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)
