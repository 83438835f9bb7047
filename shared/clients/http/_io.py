"""Bytes in and out: upload sources read in chunks, download sinks that hash as they write."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from shared.clients.http._calls import Downloaded, Progress, Upload
from shared.errors import IntegrityError


def size_of(source: object) -> int | None:
    """The byte size of an upload source, when it can be known without reading it."""
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, str | Path):
        return Path(source).stat().st_size
    f: IO[bytes] = source  # type: ignore[assignment]
    with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
        if f.seekable():  # what is left from the current position
            here = f.tell()
            end = f.seek(0, os.SEEK_END)
            f.seek(here)
            return end - here
    return None


@contextlib.contextmanager
def _opened(upload: Upload) -> Iterator[IO[bytes]]:
    if isinstance(upload.source, bytes):
        yield io.BytesIO(upload.source)
    elif isinstance(upload.source, str | Path):
        with open(upload.source, "rb") as f:
            yield f
    else:
        yield upload.source


def _report(progress: Progress | None, done: int, total: int | None) -> None:
    if progress is not None:
        progress(done, total)


def chunks(upload: Upload) -> Iterator[bytes]:
    """The upload's bytes, chunk by chunk, reporting progress after each."""
    done, total = 0, upload.size
    with _opened(upload) as f:
        _report(upload.progress, 0, total)
        while chunk := f.read(upload.chunk_bytes):
            done += len(chunk)
            yield chunk
            _report(upload.progress, done, total)


async def achunks(upload: Upload) -> AsyncIterator[bytes]:
    """``chunks`` for an async client: file reads run in a thread, off the event loop."""
    done, total = 0, upload.size
    with _opened(upload) as f:
        _report(upload.progress, 0, total)
        while chunk := await asyncio.to_thread(f.read, upload.chunk_bytes):
            done += len(chunk)
            yield chunk
            _report(upload.progress, done, total)


class Sink:
    """Where a download goes: a path (written to ``<path>.part``, renamed when complete and
    verified) or a binary file. The SHA-256 is computed on the way and checked against the
    ``ETag`` when the gateway sends the artifact's digest there."""

    def __init__(self, dest: str | Path | IO[bytes], progress: Progress | None,
                 total: int | None) -> None:
        self.path = Path(dest) if isinstance(dest, str | Path) else None
        self.part = self.path.with_name(self.path.name + ".part") if self.path else None
        self.file: IO[bytes] = open(self.part, "wb") if self.part else dest  # type: ignore[assignment]  # noqa: SIM115
        self.progress, self.total = progress, total
        self.digest = hashlib.sha256()
        self.done = 0
        _report(progress, 0, total)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.digest.update(chunk)
        self.done += len(chunk)
        _report(self.progress, self.done, self.total)

    def finish(self, headers: dict[str, str]) -> Downloaded:
        sha256 = self.digest.hexdigest()
        expected = headers.get("etag", "").strip('"').removeprefix("W/").strip('"')
        if self.part:
            self.file.close()
        if len(expected) == 64 and expected != sha256:
            self.abort()
            raise IntegrityError("downloaded bytes do not match the digest the server sent",
                                 details={"expected_sha256": expected, "sha256": sha256})
        if self.part and self.path:
            self.part.replace(self.path)
        return Downloaded(size_bytes=self.done, sha256=sha256, headers=headers, path=self.path)

    def abort(self) -> None:
        if self.part:
            self.file.close()
            self.part.unlink(missing_ok=True)
