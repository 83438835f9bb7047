"""Window starts from requests (``since``, ``now - window_s``) that a datetime cannot hold are
clamped, not a 500: found by schemathesis once listing and summaries read by start time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.executor.storage.store import _utc


@pytest.mark.parametrize(("epoch_s", "expected"), [
    (-1e300, datetime(1970, 1, 1, tzinfo=UTC)),
    (float("-inf"), datetime(1970, 1, 1, tzinfo=UTC)),
    (float("nan"), datetime(1970, 1, 1, tzinfo=UTC)),
    (1e300, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (1_700_000_000.5, datetime.fromtimestamp(1_700_000_000.5, UTC)),
])
def test_start_times_are_clamped(epoch_s: float, expected: datetime) -> None:
    assert _utc(epoch_s) == expected
