"""What a handler gets besides its payload: the job, the live config and the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger as _logger
from psycopg.rows import dict_row

from worker.db import query
from worker.jobs.registry import LeaseLost
from worker.queue import Job

if TYPE_CHECKING:
    from loguru import Logger
    from psycopg import AsyncCursor

    from worker.runtime.services import Services


@dataclass
class JobContext:
    job: Job
    services: Services
    log: Logger = _logger

    @property
    def is_last_attempt(self) -> bool:
        return self.job.attempts >= self.job.max_attempts

    @asynccontextmanager
    async def leased_transaction(self, before: str) -> AsyncIterator[AsyncCursor[dict[str, Any]]]:
        """A transaction whose writes are made under this run's lease, or `LeaseLost`.

        It starts with `holds_lease`, which share-locks the job row: until the transaction ends
        the lease can be neither reaped nor claimed again, so what the run writes in it (marking
        a post `posting`, settling a row) is written by the current claim or not at all.
        `before` names the write in the LeaseLost message."""
        queue = self.services.queue
        async with self.services.db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query("holds_lease"), queue.claim_params(self.job))
            held = await cur.fetchone()
            if not held or not next(iter(held.values())):
                raise LeaseLost(f"job {self.job.id}: lease lost before {before}")
            yield cur
