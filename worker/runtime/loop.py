"""The claim loop: wake, claim what fits, run handlers, record outcomes, sleep till the next job.

Wake-ups come from the Realtime doorbell (a hint naming the kind), from the earliest future
`run_at` the loop knows of, from a handler finishing (its kind has room again) and from a slow
fallback poll. Nothing depends on an event arriving: the table is the truth.

Running jobs are tracked by claim (the fencing token), not by job id: the same job can be
claimed again, even by this worker, after its lease was reaped. A run whose lease is lost (the
heartbeat no longer holds it) is cancelled; whatever it would write is refused anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from loguru import logger
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from worker import metrics
from worker.aio import wait_event
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, JobSpec, LeaseLost, RetryLater, Skip, Snooze
from worker.logs import redact
from worker.queue import Job, LeaseToken
from worker.runtime.services import Services

_OUTCOME_WRITE_ATTEMPTS = 8
# A statement that gave up waiting: lock_timeout, statement_timeout (the worker's sessions set
# both, worker/db.py).
_STALLS = (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)


def _describe_validation(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in exc.errors()
    )


class ClaimLoop:
    """Claims and runs jobs for the registered kinds within per-kind concurrency limits."""

    def __init__(
        self,
        services: Services,
        specs: dict[str, JobSpec[Any]],
        *,
        poll_interval_s: float = 15.0,
        shutdown_grace_s: float = 40.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.services = services
        self.queue = services.queue
        self.specs = specs
        self.poll_interval_s = poll_interval_s
        self.shutdown_grace_s = shutdown_grace_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._dirty: set[str] = set(specs)
        self._saturated: set[str] = set()
        # By claim: a job re-claimed after its lease was reaped is a second, separate run.
        self._running: dict[LeaseToken, tuple[Job, asyncio.Task[None]]] = {}
        self._lost: set[LeaseToken] = set()  # claims whose lease the heartbeat found gone
        # handler done, outcome being written: not cancelled
        self._settling: set[LeaseToken] = set()
        self._per_kind: Counter[str] = Counter()
        self._next_due: datetime | None = None
        self.last_claim_at: float | None = None
        self.last_claim_ok = False
        self.db_errors = 0

    # -- wake-ups ---------------------------------------------------------------------------
    def ring(self, table: str, record: dict[str, Any]) -> None:
        """Doorbell callback (sync): a job row was inserted, or 'look at everything'."""
        if table == "jobs":
            kind = record.get("kind")
            if kind not in self.specs:
                return
            run_at = _parse_ts(record.get("run_at"))
            if run_at is not None and run_at > datetime.now(UTC) + timedelta(milliseconds=5):
                if self._next_due is None or run_at < self._next_due:
                    self._next_due = run_at
                    metrics.WAKEUPS.labels("future_job").inc()
                    self._wake.set()  # re-arm the timer with the earlier deadline
                return
            self._dirty.add(str(kind))
            metrics.WAKEUPS.labels("doorbell").inc()
        else:
            self._dirty.update(self.specs)
            metrics.WAKEUPS.labels("resubscribed").inc()
        self._wake.set()

    def poke(self) -> None:
        """Look at every kind now (start-up, reconnect, tests)."""
        self._dirty.update(self.specs)
        self._wake.set()

    def stop(self) -> None:
        if not self._stopping.is_set():
            # Writes to X that could not end within the grace period are not started from now.
            self.services.refuse_x_writes_after(self._clock() + self.shutdown_grace_s)
        self._stopping.set()
        self._wake.set()

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- main loop --------------------------------------------------------------------------
    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self._claim_round()
                    self.db_errors = 0
                except Exception as exc:
                    self.db_errors += 1
                    self.last_claim_ok = False
                    self._dirty.update(self.specs)
                    delay = min(0.2 * 2 ** min(self.db_errors, 6), self.poll_interval_s)
                    logger.warning(
                        "claim failed ({}); retrying in {:.1f}s", redact(str(exc)), delay
                    )
                    await self._sleep(delay)
                    continue
                await self._sleep(self._timeout())
        finally:
            await self._drain()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    def _timeout(self) -> float:
        timeout = self.poll_interval_s
        if self._next_due is not None:
            until = (self._next_due - datetime.now(UTC)).total_seconds()
            timeout = max(0.0, min(timeout, until))
        return timeout

    async def _sleep(self, seconds: float) -> None:
        if self._wake.is_set() or self._stopping.is_set():
            return
        if not await wait_event(self._wake, seconds):
            # Timer or fallback poll: a due job may exist that no event announced.
            self._dirty.update(self.specs)
            metrics.WAKEUPS.labels("timer").inc()

    async def _claim_round(self) -> None:
        if self._next_due is not None and self._next_due <= datetime.now(UTC):
            self._next_due = None
            self._dirty.update(self.specs)
        while self._dirty and not self._stopping.is_set():
            kinds = list(self._dirty)
            self._dirty.clear()
            for kind in kinds:
                spec = self.specs[kind]
                free = spec.concurrency - self._per_kind[kind]
                if free <= 0:
                    self._saturated.add(kind)
                    continue
                jobs = await self.queue.claim([kind], free, spec.lease)
                self.last_claim_at = self._clock()
                self.last_claim_ok = True
                for job in jobs:
                    self._start(job, spec)
                if len(jobs) == free:
                    self._dirty.add(kind)  # a full batch: more may be waiting
        self._next_due = await self.queue.next_run_at(list(self.specs))

    def _start(self, job: Job, spec: JobSpec[Any]) -> None:
        self._per_kind[job.kind] += 1
        metrics.RUNNING.labels(job.kind).inc()
        lag = (datetime.now(UTC) - job.run_at).total_seconds()
        metrics.QUEUE_LAG.labels(job.kind).observe(max(lag, 0.0))
        task = asyncio.create_task(self._execute(job, spec), name=f"job-{job.id}")
        self._running[job.lease_token] = (job, task)
        task.add_done_callback(functools.partial(self._finished, job))

    def _finished(self, job: Job, _task: asyncio.Task[None] | None = None) -> None:
        self._running.pop(job.lease_token, None)
        self._lost.discard(job.lease_token)
        self._settling.discard(job.lease_token)
        self._per_kind[job.kind] -= 1
        metrics.RUNNING.labels(job.kind).dec()
        if job.kind in self._saturated:
            self._saturated.discard(job.kind)
            self._dirty.add(job.kind)
            self._wake.set()

    # -- one job ----------------------------------------------------------------------------
    async def _execute(self, job: Job, spec: JobSpec[Any]) -> None:
        with logger.contextualize(job_id=job.id, kind=job.kind, attempt=job.attempts):
            started = time.perf_counter()
            outcome = "succeeded"
            try:
                try:
                    payload = spec.payload_model.model_validate(job.payload)
                except ValidationError as exc:
                    outcome = "dead"
                    reason = f"invalid {job.kind} payload: {_describe_validation(exc)}"
                    logger.error(reason)
                    await self._write(self.queue.fail, job, reason, retryable=False)
                    return
                ctx = JobContext(job=job, services=self.services, log=logger)
                try:
                    result = await spec.handler(payload, ctx)
                except LeaseLost as lost:
                    outcome = "lease_lost"
                    logger.warning("stopped: {}", redact(str(lost)))
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._settling.add(job.lease_token)
                    outcome = await self._record_failure(job, exc)
                else:
                    self._settling.add(job.lease_token)
                    held = await self._write(self.queue.complete, job, result)
                    if not held:
                        logger.warning(
                            "completed after losing the lease; another worker may rerun it"
                        )
            except asyncio.CancelledError:
                if job.lease_token in self._lost:
                    outcome = "lease_lost"
                    logger.warning("cancelled: the lease was lost (reaped or claimed again)")
                else:
                    outcome = "released"
                raise
            finally:
                metrics.JOBS.labels(job.kind, outcome).inc()
                metrics.JOB_SECONDS.labels(job.kind).observe(time.perf_counter() - started)

    async def _record_failure(self, job: Job, exc: Exception) -> str:
        """Write what the handler's exception means for the job; returns the outcome's name."""
        if isinstance(exc, Snooze):
            logger.info("snoozed until {}: {}", exc.until.isoformat(), exc.reason)
            await self._write(self.queue.snooze, job, exc.until, exc.reason)
            return "snoozed"
        if isinstance(exc, Skip):
            logger.info("skipped: {}", redact(exc.reason))
            await self._write(self.queue.skip, job, redact(exc.reason), exc.result)
            return "skipped"
        if isinstance(exc, GiveUp):
            logger.error("gave up: {}", redact(str(exc)))
            await self._write(self.queue.fail, job, redact(str(exc)), retryable=False)
            return "dead"
        if isinstance(exc, RetryLater):
            logger.warning("will retry: {}", redact(str(exc)))
            status = await self._write(
                self.queue.fail, job, redact(str(exc)), retry_in=exc.retry_in
            )
            return "dead" if status == "dead" else "retry"
        message = redact(f"{type(exc).__name__}: {exc}")
        logger.opt(exception=exc).error("handler raised: {}", message)
        status = await self._write(self.queue.fail, job, message)
        if isinstance(exc, _STALLS):
            await self._stall_alert(job, exc)
        return "dead" if status == "dead" else "retry"

    async def _stall_alert(self, job: Job, exc: Exception) -> None:
        """A statement gave up waiting (lock_timeout / statement_timeout): say so, loudly. The
        heartbeat would otherwise keep a job stuck behind someone else's row lock alive forever."""
        settings = self.services.settings
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            what = f"a row lock for more than {settings.db_lock_timeout_s:g} s (lock_timeout)"
        else:
            what = f"a statement for more than {settings.db_statement_timeout_s:g} s"
        message = (
            f"{job.kind} job {job.id} gave up waiting on {what}: another session holds rows it "
            "needs (look for long-running transactions in pg_stat_activity); the job will retry"
        )
        try:
            await self.services.db.execute(
                "raise_alert",
                {
                    "level": "warning",
                    "kind": "db_stall",
                    "dedupe_key": f"db_stall:{job.kind}",
                    "message": message,
                    "details": Jsonb({"kind": job.kind, "job_id": job.id}),
                },
            )
        except Exception as write_exc:
            logger.warning("could not raise the stall alert: {}", redact(str(write_exc)))

    async def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record an outcome, retrying through a database blip: losing it would rerun the job."""
        delay = 0.1
        for attempt in range(1, _OUTCOME_WRITE_ATTEMPTS + 1):
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                if attempt == _OUTCOME_WRITE_ATTEMPTS:
                    logger.error("could not record the outcome ({}); the lease will expire", exc)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return None

    # -- leases -----------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = max(min(s.lease.total_seconds() for s in self.specs.values()) / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            await self._heartbeat(timeout_s=interval)

    async def _heartbeat(self, *, timeout_s: float = 10.0) -> None:
        """Renew every running claim's lease; cancel the runs whose lease is gone. A heartbeat
        that cannot get through within `timeout_s` gives way to the next one (a wait of its own
        would let every lease run out)."""
        by_lease: dict[timedelta, list[Job]] = {}
        for job, _task in list(self._running.values()):
            by_lease.setdefault(self.specs[job.kind].lease, []).append(job)
        for lease, jobs in by_lease.items():
            try:
                async with asyncio.timeout(timeout_s):
                    held = await self.queue.heartbeat(jobs, lease)
            except Exception as exc:
                logger.warning("heartbeat failed: {}", redact(f"{type(exc).__name__}: {exc}"))
                continue
            for job in jobs:
                if job.lease_token in held or job.lease_token in self._settling:
                    continue
                entry = self._running.get(job.lease_token)
                if entry is None or entry[1].done():
                    continue  # finished meanwhile
                self._lost.add(job.lease_token)
                logger.bind(job_id=job.id).warning(
                    "lease lost (reaped, or claimed again): cancelling this run"
                )
                entry[1].cancel()

    async def _drain(self) -> None:
        """Let running handlers finish within the grace period; hand back the rest.

        A handler in the middle of a write to X is not cut off: its call is seen through (it
        ends within X's timeouts, which the grace period covers) and its outcome recorded, so
        a job is never handed back while its post may still be created."""
        if not self._running:
            return
        tasks = [t for _j, t in self._running.values()]
        logger.info("waiting up to {}s for {} running job(s)", self.shutdown_grace_s, len(tasks))
        _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace_s)
        if not pending:
            return
        unfinished = [job for job, task in list(self._running.values()) if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            released = await self.queue.release(unfinished)
            logger.warning("released {} unfinished job(s) back to the queue", released)
        except Exception as exc:
            logger.error("could not release jobs ({}); their leases will expire", redact(str(exc)))


def _parse_ts(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Postgres may send "+00" offsets; fromisoformat in 3.11 needs "+00:00".
    if len(text) >= 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
