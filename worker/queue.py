"""Job operations in Python terms, on top of the SQL queue API (enqueue_job, claim_jobs ...)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from worker.db import Database


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
        )


class JobQueue:
    """The worker's view of `jobs`: every call is one SQL function."""

    def __init__(self, db: Database, worker_id: str):
        self.db = db
        self.worker_id = worker_id

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

    async def heartbeat(self, ids: list[int], lease: timedelta) -> set[int]:
        if not ids:
            return set()
        rows = await self.db.fetch(
            "heartbeat_jobs", {"worker_id": self.worker_id, "ids": ids, "lease": lease}
        )
        return {next(iter(r.values())) for r in rows}

    async def complete(self, job_id: int, result: dict[str, Any] | None = None) -> bool:
        return bool(
            await self.db.fetchval(
                "complete_job",
                {
                    "id": job_id,
                    "worker_id": self.worker_id,
                    "result": Jsonb(result) if result is not None else None,
                },
            )
        )

    async def skip(self, job_id: int, reason: str, result: dict[str, Any] | None = None) -> bool:
        """End a held job as `skipped` (work that must not be attempted); False if not held."""
        return bool(
            await self.db.fetchval(
                "skip_job",
                {
                    "id": job_id,
                    "worker_id": self.worker_id,
                    "reason": reason,
                    "result": Jsonb(result) if result is not None else None,
                },
            )
        )

    async def fail(
        self,
        job_id: int,
        error: str,
        *,
        retry_in: timedelta | None = None,
        retryable: bool = True,
    ) -> str | None:
        """Record a failure; returns the new status ('queued' or 'dead'), None if not held."""
        status = await self.db.fetchval(
            "fail_job",
            {
                "id": job_id,
                "worker_id": self.worker_id,
                "error": error,
                "retry_in": retry_in,
                "retryable": retryable,
            },
        )
        return str(status) if status is not None else None

    async def snooze(self, job_id: int, until: datetime, reason: str | None = None) -> bool:
        return bool(
            await self.db.fetchval(
                "snooze_job",
                {"id": job_id, "worker_id": self.worker_id, "until": until, "reason": reason},
            )
        )

    async def release(self, ids: list[int]) -> int:
        if not ids:
            return 0
        return int(
            await self.db.fetchval("release_jobs", {"worker_id": self.worker_id, "ids": ids}) or 0
        )

    async def next_run_at(self, kinds: list[str]) -> datetime | None:
        value = await self.db.fetchval("next_run_at", {"kinds": kinds})
        return value if isinstance(value, datetime) else None
