"""Job operations in Python terms, on top of the SQL queue API (enqueue_job, claim_jobs ...).

Every claim carries a fencing token (`Job.lease_token`); every write about it (complete, fail,
snooze, heartbeat, release) presents it, and the database ignores a write whose token is no
longer the job's current one: a run that lost its lease cannot change the job's fate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from worker.db import Database

# A claim's fencing token: drawn from a sequence by claim_jobs, never reused, larger for every
# later claim. Unique across all claims, so it also names a claim in the worker's bookkeeping.
LeaseToken = int


@dataclass(frozen=True)
class Job:
    """A claimed job, as `claim_jobs` returned it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    priority: int
    run_at: datetime
    created_at: datetime
    lease_token: LeaseToken  # this claim's fencing token

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            payload=row["payload"] or {},
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            priority=row["priority"],
            run_at=row["run_at"],
            created_at=row["created_at"],
            lease_token=row["lease_token"],
        )


class JobQueue:
    """The worker's view of `jobs`: every call is one SQL function."""

    def __init__(self, db: Database, worker_id: str, *, lease_db: Database | None = None):
        self.db = db
        self.worker_id = worker_id
        # Heartbeats keep leases alive: on their own connection they never queue behind the
        # handlers for the shared pool (a starved heartbeat loses every lease at once).
        self.lease_db = lease_db or db

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        run_at: datetime | None = None,
        priority: int = 0,
        dedupe_key: str | None = None,
        max_attempts: int | None = None,
    ) -> int:
        job_id = await self.db.fetchval(
            "enqueue_job",
            {
                "kind": kind,
                "payload": Jsonb(payload or {}),
                "run_at": run_at,
                "priority": priority,
                "dedupe_key": dedupe_key,
                "max_attempts": max_attempts,
            },
        )
        return int(job_id)

    async def claim(self, kinds: list[str], max_jobs: int, lease: timedelta) -> list[Job]:
        if max_jobs <= 0 or not kinds:
            return []
        rows = await self.db.fetch(
            "claim_jobs",
            {"worker_id": self.worker_id, "kinds": kinds, "max": max_jobs, "lease": lease},
        )
        return [Job.from_row(r) for r in rows]

    async def heartbeat(self, jobs: Sequence[Job], lease: timedelta) -> set[LeaseToken]:
        """Extend the leases of `jobs`; returns the tokens of the claims still held."""
        if not jobs:
            return set()
        rows = await self.lease_db.fetch(
            "heartbeat_jobs",
            {
                "worker_id": self.worker_id,
                "ids": [j.id for j in jobs],
                "lease_tokens": [j.lease_token for j in jobs],
                "lease": lease,
            },
        )
        return {r["lease_token"] for r in rows}

    async def holds_lease(self, job: Job) -> bool:
        """Whether `job`'s claim is still current (see `holds_lease` in SQL for the lock)."""
        return bool(await self.db.fetchval("holds_lease", self.claim_params(job)))

    def claim_params(self, job: Job) -> dict[str, Any]:
        """The named parameters that identify `job`'s claim (`id`, `worker_id`, `lease_token`)."""
        return {"id": job.id, "worker_id": self.worker_id, "lease_token": job.lease_token}

    async def complete(self, job: Job, result: dict[str, Any] | None = None) -> bool:
        return bool(
            await self.db.fetchval(
                "complete_job",
                {**self.claim_params(job), "result": Jsonb(result) if result is not None else None},
            )
        )

    async def skip(self, job: Job, reason: str, result: dict[str, Any] | None = None) -> bool:
        """End a held job as `skipped` (work that must not be attempted); False if not held."""
        return bool(
            await self.db.fetchval(
                "skip_job",
                {
                    **self.claim_params(job),
                    "reason": reason,
                    "result": Jsonb(result) if result is not None else None,
                },
            )
        )

    async def fail(
        self,
        job: Job,
        error: str,
        *,
        retry_in: timedelta | None = None,
        retryable: bool = True,
    ) -> str | None:
        """Record a failure; returns the new status ('queued' or 'dead'), None if not held."""
        status = await self.db.fetchval(
            "fail_job",
            {
                **self.claim_params(job),
                "error": error,
                "retry_in": retry_in,
                "retryable": retryable,
            },
        )
        return str(status) if status is not None else None

    async def snooze(self, job: Job, until: datetime, reason: str | None = None) -> bool:
        return bool(
            await self.db.fetchval(
                "snooze_job", {**self.claim_params(job), "until": until, "reason": reason}
            )
        )

    async def release(self, jobs: Sequence[Job]) -> int:
        """Hand back unfinished claims (attempt refunded); returns how many were still held."""
        if not jobs:
            return 0
        return int(
            await self.db.fetchval(
                "release_jobs",
                {
                    "worker_id": self.worker_id,
                    "ids": [j.id for j in jobs],
                    "lease_tokens": [j.lease_token for j in jobs],
                },
            )
            or 0
        )

    async def next_run_at(self, kinds: list[str]) -> datetime | None:
        value = await self.db.fetchval("next_run_at", {"kinds": kinds})
        return value if isinstance(value, datetime) else None
