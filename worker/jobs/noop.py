"""`noop`: does nothing. Exists so tests and benchmarks can measure the runtime itself."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, RetryLater, job_kind


class NoopPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail: str | None = None  # "retry" or "give_up": exercise the failure paths
    duration_s: float = Field(default=0.0, ge=0, le=3600)  # simulated work (shutdown, lease tests)


@job_kind("noop", NoopPayload, concurrency=16)
async def run_noop(payload: NoopPayload, ctx: JobContext) -> dict[str, Any] | None:
    if payload.duration_s:
        await asyncio.sleep(payload.duration_s)
    if payload.fail == "retry":
        raise RetryLater("noop asked to fail")
    if payload.fail == "give_up":
        raise GiveUp("noop asked to give up")
    return {"ok": True, "worker_id": ctx.services.queue.worker_id, "attempt": ctx.job.attempts}
