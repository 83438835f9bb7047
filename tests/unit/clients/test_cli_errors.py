"""Mistakes on the command line are one-line messages, never tracebacks (issue 14, case 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from shared.natsserver import free_port


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_upload_of_a_missing_file_is_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, what: str
                                               ) -> None:
    monkeypatch.setenv("QUANTOPS_API_KEY", "qo_x_y")
    path = tmp_path / "missing.csv" if what == "missing" else tmp_path
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens: the file must fail first
    with pytest.raises(SystemExit) as exited:  # argparse's usage error: status 2, one line
        main(["datasets", "upload", "n", str(path), "--format", "csv", "--url", url])
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert f"error: argument file: cannot read {path}: " in err and "Traceback" not in err


def test_models_upload_checks_its_file_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    with pytest.raises(SystemExit):
        main(["models", "upload", "m", str(tmp_path / "nope.skops")])
    assert "cannot read" in capsys.readouterr().err
