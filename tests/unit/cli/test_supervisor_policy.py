"""The supervisor's restart schedule and log files: pure logic, real files."""

from __future__ import annotations

import os
from pathlib import Path

from cli.logfiles import ErrorLines, RotatingFile, pipe_to
from cli.supervisor import FIRST_BACKOFF_S, HEALTHY_S, MAX_BACKOFF_S, Restarts, service_names
from shared.settings import Settings


def test_backoff_doubles_is_capped_and_resets_after_a_healthy_run() -> None:
    r, now, delays = Restarts(), 0.0, []
    for _ in range(8):  # dies at once, every time
        r.started(now)
        delays.append(r.died(now))
        now += delays[-1]
    assert delays[0] == FIRST_BACKOFF_S
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == MAX_BACKOFF_S == 2.0
    r.started(now)
    assert r.died(now + HEALTHY_S) == FIRST_BACKOFF_S  # a healthy minute forgets the past
    assert r.count == 9


def test_up_runs_two_executors_by_default() -> None:
    names = service_names(Settings.from_env({}))
    assert [n for n, s, _ in names if s == "executor"] == ["executor", "executor-2"]
    assert len(service_names(Settings.from_env({"QUANTOPS_UP_EXECUTORS": "1"}))) == 4


def test_log_file_rotates_by_size_and_keeps_a_bounded_number(tmp_path: Path) -> None:
    f = RotatingFile(tmp_path / "x.log", max_bytes=1000, backups=3)
    for i in range(100):
        f.write(f"{i:04d} {'y' * 94}\n".encode())  # 100 bytes a line
    f.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["x.log", "x.log.1", "x.log.2", "x.log.3"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in tmp_path.iterdir())
    assert (tmp_path / "x.log").read_text().splitlines()[-1].startswith("0099")
    assert (tmp_path / "x.log.1").read_text().splitlines()[-1].startswith("0089")


def test_error_lines_are_recognised_in_every_format() -> None:
    is_error = ErrorLines()
    lines = {
        b'{"ts":"t","level":"ERROR","service":"state","msg":"boom"}\n': True,
        b'{"ts":"t","level":"INFO","service":"state","msg":"error in name only"}\n': False,
        b"2026-12-06 00:00:00,000 CRITICAL executor x: down\n": True,
        b"2026-12-06 00:00:00,000 INFO    executor x: ERROR as a word\n": False,
        b"[123] 2026/12/06 00:00:00.000000 [ERR] JetStream failure\n": True,
        b"[123] 2026/12/06 00:00:00.000000 [INF] Server is ready\n": False,
        b"Traceback (most recent call last):\n": True,
        b'  File "x.py", line 1, in <module>\n': True,
        b"ValueError: bad\n": True,
        b'{"ts":"t","level":"INFO","msg":"back"}\n': False,
    }
    assert {line: is_error(line) for line in lines} == lines


def test_a_pipe_feeds_the_file_and_errors(tmp_path: Path) -> None:
    out = RotatingFile(tmp_path / "svc.log", max_bytes=10_000, backups=1)
    errors = RotatingFile(tmp_path / "errors.log", max_bytes=10_000, backups=1)
    write_end, pump = pipe_to("svc", out, errors)
    os.write(write_end, b'{"level":"INFO","msg":"hi"}\n{"level":"ERROR","msg":"no"}\n')
    os.close(write_end)
    pump.join(5)
    assert not pump.alive()
    out.close()
    errors.close()
    assert (tmp_path / "svc.log").read_bytes().count(b"\n") == 2
    assert (tmp_path / "errors.log").read_bytes() == b'svc: {"level":"ERROR","msg":"no"}\n'
