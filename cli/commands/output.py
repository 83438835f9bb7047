"""What the gateway commands print: aligned tables, JSON for scripts, progress on stderr.

Plain text, no dependency: tables are padded columns; progress bars redraw one stderr line and
stay silent when stderr is not a terminal (logs and pipes get no control characters).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

_encode = msgspec.json.Encoder(enc_hook=str).encode


def as_json(obj: Any) -> str:
    """Pretty JSON of a Struct, a list of Structs or plain data."""
    return msgspec.json.format(_encode(obj), indent=2).decode()


def print_json(obj: Any, out: TextIO | None = None) -> None:
    print(as_json(obj), file=out or sys.stdout)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers aligned right."""
    cells = [[cell_text(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(table(headers, rows) if rows else "(none)")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    return str(value)


def epoch(seconds: float | None) -> str:
    """Epoch seconds as local time (task records carry epoch floats)."""
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """A one-line picture of a series: ``width`` block characters, each the mean of its share
    of the values, scaled from the series' minimum to its maximum (flat: all the lowest)."""
    finite = [float(v) for v in values if v is not None and v == v]  # NaN != NaN
    if not finite:
        return ""
    n = min(width, len(finite))
    chunks = [finite[i * len(finite) // n:(i + 1) * len(finite) // n] for i in range(n)]
    means = [sum(c) / len(c) for c in chunks]
    low, high = min(means), max(means)
    span = (high - low) or 1.0
    return "".join(SPARKS[round((m - low) / span * (len(SPARKS) - 1))] for m in means)


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class ProgressBar:
    """``progress(done, total)`` callback drawing ``label [#####    ] 42%  3.1 MiB/s``."""

    def __init__(self, label: str, out: TextIO | None = None) -> None:
        self.label = label
        self.out = out or sys.stderr
        self.enabled = self.out.isatty()
        self.started = time.monotonic()
        self.last_draw = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last_draw < 0.1 and done != total):
            return
        self.last_draw = now
        rate = done / max(now - self.started, 1e-6)
        width = max(10, min(40, shutil.get_terminal_size().columns - len(self.label) - 40))
        if total:
            filled = int(width * done / total)
            bar = f"[{'#' * filled}{' ' * (width - filled)}] {100 * done / total:3.0f}%"
        else:
            bar = f"{size(done)}"
        self.out.write(f"\r{self.label} {bar}  {size(rate)}/s ")
        self.out.flush()

    def close(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()
