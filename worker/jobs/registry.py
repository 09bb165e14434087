"""Job kinds: one pydantic payload model and one async handler each, and explicit outcomes.

A handler returns a result dict (the job succeeds) or raises one of the outcomes below; any
other exception is a retryable failure with backoff. Handlers register themselves with
`@job_kind(...)`; `worker.jobs.load_all()` imports every module in this package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from worker.jobs.context import JobContext


class RetryLater(Exception):
    """Failed, try again (after `retry_in`, or the queue's exponential backoff)."""

    def __init__(self, message: str, *, retry_in: timedelta | None = None):
        super().__init__(message)
        self.retry_in = retry_in


class GiveUp(Exception):
    """Failed for good: retrying cannot help (bad payload, refused content, missing row)."""


class Skip(Exception):
    """Not to be attempted at all: the job ends `skipped` (not dead, never retried), with the
    reason in `result.skipped` (a capability the X access tier lacks or X refused)."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.result = result


class Snooze(Exception):
    """Not now: wait until `until` without spending an attempt (rate limit, quota, daily cap)."""

    def __init__(self, until: datetime, reason: str):
        super().__init__(reason)
        self.until = until
        self.reason = reason


class LeaseLost(Exception):
    """This run no longer holds the job's lease (it was reaped, another claim runs the job):
    stop, and write nothing about it."""


P = TypeVar("P", bound=BaseModel)
Handler = Callable[[P, "JobContext"], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class JobSpec(Generic[P]):
    """What the runtime needs to run one kind."""

    kind: str
    payload_model: type[P]
    handler: Handler[P]
    concurrency: int
    lease: timedelta


REGISTRY: dict[str, JobSpec[Any]] = {}


def job_kind(
    kind: str,
    payload: type[P],
    *,
    concurrency: int = 4,
    lease: timedelta = timedelta(seconds=60),
) -> Callable[[Handler[P]], Handler[P]]:
    """Register `handler` for `kind` with its payload model and concurrency limit."""

    def register(handler: Handler[P]) -> Handler[P]:
        if kind in REGISTRY:
            raise ValueError(f"job kind {kind!r} registered twice")
        REGISTRY[kind] = JobSpec(kind, payload, handler, concurrency, lease)
        return handler

    return register
