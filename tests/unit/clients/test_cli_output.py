"""The CLI's plain-text output: aligned tables, JSON, progress that stays out of pipes."""

from __future__ import annotations

import io
import json

from cli.commands.output import ProgressBar, as_json, table
from shared.contracts.executor import TaskRecord


def test_tables_align_text_left_and_numbers_right() -> None:
    out = table(["model", "versions"], [("alpha", 3), ("momentum-long", 12)])
    assert out.splitlines() == ["model          versions",
                                "-------------  --------",
                                "alpha                 3",
                                "momentum-long        12"]


def test_json_of_structs_and_lists() -> None:
    record = TaskRecord(id="t1", type="noop", status="queued")
    assert json.loads(as_json([record]))[0]["status"] == "queued"


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar("upload", out=out)
    bar(10, 100)
    bar(100, 100)
    bar.close()
    assert out.getvalue() == ""


def test_sparkline_scales_min_to_max_and_fits_its_width() -> None:
    from cli.commands.output import sparkline

    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▁▁▁"  # flat: no invented movement
    assert len(sparkline([float(i) for i in range(1000)], 40)) == 40
    assert sparkline([]) == "" and sparkline([float("nan")]) == ""
