"""Log files under ``quantops up``: each process's output rotated by size, errors also apart.

A child writes to a pipe; one thread per child copies its lines into ``<name>.log``, which
rotates at ``max_bytes`` (``<name>.log.1`` is the newest old file, at most ``backups`` kept),
and copies error lines (a JSON record at ERROR or CRITICAL, a text record with that level,
nats-server's ``[ERR]``/``[FTL]``, a Python traceback) into the shared ``errors.log`` too,
prefixed with the process name. Files are created 0600: a log can hold the one-time admin key
banner. Rotation is done here rather than by each service so that every process, nats-server
and a crashing interpreter's traceback included, is bounded the same way.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import IO

_ERROR = re.compile(
    rb'"level":\s*"(ERROR|CRITICAL)"|^\S+ \S+ (ERROR|CRITICAL) |\[(ERR|FTL)\]|^Traceback ')
#: A line that starts a new record (JSON, a timestamp, nats-server's "[pid]") ends a traceback.
_RECORD_START = re.compile(rb"^(\{|\d|\[)")


class RotatingFile:
    """An append-only file that rotates by size; safe to share between threads.

    Args:
        path: the live file; old ones are ``path.1`` (newest) to ``path.<backups>``.
        max_bytes: a write that would take the file past this rotates it first.
        backups: old files kept; the oldest beyond it is deleted.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file = self._open()
        self._size = self.path.stat().st_size

    def _open(self) -> IO[bytes]:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab", buffering=0)

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self._open()
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._file.close()


class ErrorLines:
    """Decides, line by line, which lines of one stream are errors (tracebacks span lines)."""

    def __init__(self) -> None:
        self._in_traceback = False

    def __call__(self, line: bytes) -> bool:
        if line.startswith(b"Traceback "):
            self._in_traceback = True
        elif self._in_traceback and (_RECORD_START.match(line) or not line.strip()):
            self._in_traceback = False
        return self._in_traceback or bool(_ERROR.search(line))


class LogPump:
    """Copies one child's output (the read end of a pipe) into its rotating file and errors.

    Args:
        name: the process's name, prefixed to its lines in ``errors.log``.
        source: the read end of the child's stdout/stderr pipe; closed at end of stream.
        out: the child's own rotating file.
        errors: the shared errors file.
    """

    def __init__(self, name: str, source: int, out: RotatingFile, errors: RotatingFile) -> None:
        self.name = name.encode()
        self.out = out
        self.errors = errors
        self._source = os.fdopen(source, "rb")
        self._is_error = ErrorLines()
        self._thread = threading.Thread(target=self._run, name=f"log-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._source:
            for line in self._source:
                self.out.write(line)
                if self._is_error(line):
                    self.errors.write(self.name + b": " + line)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def pipe_to(name: str, out: RotatingFile, errors: RotatingFile) -> tuple[int, LogPump]:
    """A pipe whose write end (returned, for the child; close it after spawning) feeds ``out``
    and ``errors`` through a ``LogPump``."""
    read_end, write_end = os.pipe()
    return write_end, LogPump(name, read_end, out, errors)
