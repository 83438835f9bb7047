"""The SQLite catalog file: connections, pragmas, transactions and schema migrations.

One writer connection, serialised by an asyncio lock (aiosqlite runs each connection on its own
thread; two coroutines must never interleave statements of two transactions on it), and one
reader connection: in WAL mode it reads the last committed state while the writer writes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from shared import telemetry

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql\Z")

# WAL: readers never block the writer. FULL: a commit is on disk before the reply is sent.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def migrations(directory: Path = SQL_DIR) -> list[tuple[int, Path]]:
    """The numbered ``.sql`` files, in order; numbers must be 1, 2, 3... without gaps."""
    found = sorted((int(m.group(1)), p) for p in directory.iterdir()
                   if (m := _MIGRATION.match(p.name)))
    for expected, (number, path) in enumerate(found, start=1):
        if number != expected:
            raise RuntimeError(f"migration {path.name}: expected number {expected:04d}")
    return found


class Catalog:
    """The registry's SQLite database.

    Args:
        path: the database file; its directory is created if missing.
        migrations_dir: where the numbered migrations live (tests point elsewhere).
    """

    def __init__(self, path: Path, *, migrations_dir: Path = SQL_DIR) -> None:
        self.path = path
        self.migrations_dir = migrations_dir
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self.migrate()
        self._reader = await self._connect()

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: no implicit BEGIN; transactions are explicit (write()).
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in _PRAGMAS:
            await conn.execute(pragma)
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def schema_version(self) -> int:
        rows = await self.writer.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    async def migrate(self) -> list[int]:
        """Apply every migration newer than the file's ``user_version``, each atomically."""
        applied: list[int] = []
        current = await self.schema_version()
        for number, path in migrations(self.migrations_dir):
            if number <= current:
                continue
            # The script and the version bump commit together, or neither does.
            script = f"BEGIN IMMEDIATE;\n{path.read_text()}\nPRAGMA user_version={number};\nCOMMIT;"
            try:
                await self.writer.executescript(script)
            except Exception:
                if self.writer.in_transaction:
                    await self.writer.execute("ROLLBACK")
                # Another registry process on the same catalog (quantops up --replicas
                # registry=2) applied it between our version check and our write lock.
                if await self.schema_version() >= number:
                    continue
                raise
            log.info("catalog migrated", extra={"schema_version": number, "file": path.name})
            applied.append(number)
        return applied

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("catalog is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("catalog is not open")
        return self._reader

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error."""
        with telemetry.span("sqlite transaction", {"db.system": "sqlite"}):
            async with self._lock:
                conn = self.writer
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return await fetchall(self.reader, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        return await fetchone(self.reader, sql, params)


def _query_span(sql: str) -> AbstractContextManager[object]:
    statement = " ".join(sql.split())
    return telemetry.span(f"sqlite {statement.split(' ', 1)[0].upper()}",
                          {"db.system": "sqlite", "db.statement": statement[:500]})


async def fetchall(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
                   ) -> list[aiosqlite.Row]:
    with _query_span(sql):
        return list(await conn.execute_fetchall(sql, params))


async def fetchone(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
                   ) -> aiosqlite.Row | None:
    with _query_span(sql):
        return next(iter(await conn.execute_fetchall(sql, params)), None)


def placeholders(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)
