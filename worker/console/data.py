"""The console's way to the database: the CLI's `Operator`, on a small pool, off the event loop.

Every page and action is an `Operator` call (worker/ops/operator.py), the same functions
`chirpbase` runs, so the console has no SQL and no rules of its own. `Operator` is synchronous
(psycopg), so calls run in worker threads on connections from a small pool of their own, apart
from the worker's: a slow page never holds a connection the claim loop needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from worker.db import configure_json
from worker.ops.operator import Operator, Unavailable

T = TypeVar("T")


def _configure(conn: psycopg.Connection[Any]) -> None:
    configure_json(conn)
    # A page must not wait on a lock or a slow plan for long: fail and say so.
    conn.execute("set statement_timeout = '10s'")
    conn.execute("set lock_timeout = '3s'")


class ConsoleDB:
    def __init__(self, dsn: str, *, max_size: int = 4, wait_s: float = 5.0):
        self.wait_s = wait_s  # how long a page waits for a connection before saying so
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            name="chirpbase-console",
            kwargs={"autocommit": True, "application_name": "chirpbase-console"},
            configure=_configure,
            check=ConnectionPool.check_connection,
            reconnect_timeout=0,
        )

    async def open(self) -> None:
        # Not waiting: the console starts even while the database is away (pages say so).
        await asyncio.to_thread(self._pool.open, False)

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.close, 5.0)

    def _call(self, fn: Callable[[Operator], T]) -> T:
        try:
            with self._pool.connection(timeout=self.wait_s) as conn:
                return fn(Operator(conn))
        except PoolTimeout:
            raise Unavailable("the database did not answer in time") from None
        except psycopg.OperationalError as exc:
            raise Unavailable(f"database connection lost ({type(exc).__name__})") from None

    async def run(self, fn: Callable[[Operator], T]) -> T:
        """`fn(operator)` in a thread, on a pooled connection."""
        return await asyncio.to_thread(self._call, fn)

    def connection(self) -> Any:
        """A pooled connection for code that reads with plain psycopg (the charts)."""
        return self._pool.connection(timeout=self.wait_s)
