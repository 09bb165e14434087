"""The one place that talks to Postgres: a psycopg 3 async pool and named SQL queries.

All SQL lives in `worker/sql/*.sql` as named queries (`-- name: claim_jobs`), loaded once.
Python never builds SQL by concatenation; modules ask for a query by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.abc import AdaptContext
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

SQL_DIR = Path(__file__).resolve().parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)

Params = Sequence[Any] | Mapping[str, Any] | None


@cache
def queries() -> dict[str, str]:
    """All named queries from worker/sql/*.sql. Duplicate names are a programming error."""
    found: dict[str, str] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        heads = list(_HEADER.finditer(text))
        for i, head in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            body = text[head.end() : end].strip()
            name = head["name"]
            if name in found:
                raise ValueError(f"duplicate query name {name!r} in {path.name}")
            found[name] = body
    return found


# Postgres stores JSON nested a few thousand levels deep; Python's json module gives up near 1,000
# (RecursionError). One such jobs.payload or configs.value would otherwise fail every query that
# reads it (claiming, config reloads) over and over. It loads as this one-key object instead,
# which every payload and config model refuses (extra="forbid") with the key as the reason.
UNLOADABLE_JSON_KEY = "(document nested too deeply to load)"


def _loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        return {UNLOADABLE_JSON_KEY: True}


def configure_json(conn: AdaptContext) -> None:
    """Load json/jsonb on `conn` (a connection or cursor) the way the worker does."""
    set_json_loads(_loads, conn)


def _session_timeouts(
    lock_timeout_s: float | None, statement_timeout_s: float | None
) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    """Configure each new connection: JSON loading and, for the worker, session timeouts.

    With `lock_timeout` a statement waiting on a row lock held elsewhere (an operator's open
    transaction, a long migration) fails instead of stalling its job while heartbeats keep the
    lease alive; `statement_timeout` does the same for a statement that runs away."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        configure_json(conn)
        settings = [
            (name, f"{round(seconds * 1000)}ms")
            for name, seconds in (
                ("lock_timeout", lock_timeout_s),
                ("statement_timeout", statement_timeout_s),
            )
            if seconds
        ]
        for name, value in settings:  # autocommit: a session setting, kept by the connection
            await conn.execute("select pg_catalog.set_config(%s, %s, false)", (name, value))

    return configure


def query(name: str) -> LiteralString:
    """The SQL text of a named query (trusted: it ships with the package)."""
    try:
        return queries()[name]  # type: ignore[return-value,unused-ignore]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in {SQL_DIR}") from None


class Database:
    """A connection pool plus helpers to run named queries."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        name: str = "chirpbase",
        lock_timeout_s: float | None = None,
        statement_timeout_s: float | None = None,
    ):
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=name,
            kwargs={"autocommit": True, "application_name": name},
            configure=_session_timeouts(lock_timeout_s, statement_timeout_s),
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=0,
        )

    @property
    def pool(self) -> AsyncConnectionPool:
        return self._pool

    async def open(self, *, wait: bool = True, wait_s: float = 10.0) -> None:
        await self._pool.open(wait=wait, timeout=wait_s)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def fetch(self, name: str, params: Params = None) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(name), params)
            return await cur.fetchall()

    async def fetchrow(self, name: str, params: Params = None) -> dict[str, Any] | None:
        rows = await self.fetch(name, params)
        return rows[0] if rows else None

    async def fetchval(self, name: str, params: Params = None) -> Any:
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(query(name), params)
            row = await cur.fetchone()
            return row[0] if row else None

    async def execute(self, name: str, params: Params = None) -> int:
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(query(name), params)
            return cur.rowcount

    async def ping(self) -> bool:
        """True when a connection answers `select 1`."""
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute("select 1")
            return True
        except Exception:
            return False
