"""JetStream's header time formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.state.timefmt import parse_duration_s, parse_time


def test_rfc3339_with_nanoseconds() -> None:
    t = parse_time("2026-01-02T03:04:05.123456789Z")
    want = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp() + 0.123456789
    assert abs(t - want) < 1e-6
    assert parse_time("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5,
                                                          tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "seconds"), [("30", 30), ("30s", 30), ("1m30s", 90),
                                               ("2h", 7200), ("500ms", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


def test_garbage_duration_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_duration_s("soon")
