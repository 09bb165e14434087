"""Helpers for the generate_tweet tests: configs, rows, running the handler or a worker."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
from loguru import logger
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from worker.jobs.context import JobContext
from worker.jobs.generate_tweet import GenerateTweetPayload, generate_tweet
from worker.runtime.services import Services
from worker.runtime.worker import Worker
from worker.settings import Settings


def set_config(conn: psycopg.Connection, key: str, **values: Any) -> None:
    """Merge `values` into the `key` config row (the database validates it)."""
    conn.execute(
        "update public.configs set value = value || %s where key = %s", (Jsonb(values), key)
    )


def schedule(conn: psycopg.Connection, topic: str, *, with_image: bool = False) -> int:
    row = conn.execute(
        "insert into public.scheduled_tweets (topic, with_image) values (%s, %s) returning id",
        (topic, with_image),
    ).fetchone()
    assert row is not None
    return int(row[0])


def scheduled(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select * from public.scheduled_tweets where id = %s", (row_id,)
        ).fetchone()
    assert row is not None
    return row


def jobs_for(
    conn: psycopg.Connection, row_id: int, kind: str | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select id, kind, status, dedupe_key, run_at, attempts, last_error from public.jobs"
            " where (payload ->> 'scheduled_tweet_id')::bigint = %s and (%s::text is null or kind = %s)"
            " order by id",
            (row_id, kind, kind),
        ).fetchall()


def open_alert(conn: psycopg.Connection, dedupe_key: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select level, kind, message from public.alerts where dedupe_key = %s and resolved_at is null",
            (dedupe_key,),
        ).fetchone()


async def run_handler(
    services: Services, row_id: int, *, attempts: int = 1, max_attempts: int = 4
) -> Any:
    """Claim the row's generate_tweet job and run the handler once with a real JobContext.

    Returns the handler's result, or the outcome it raised (Snooze, GiveUp, RetryLater)."""
    await services.config.reload()
    claimed = await services.queue.claim(["generate_tweet"], 1, timedelta(seconds=60))
    assert claimed and claimed[0].payload == {"scheduled_tweet_id": row_id}, claimed
    job = dataclasses.replace(claimed[0], attempts=attempts, max_attempts=max_attempts)
    ctx = JobContext(job=job, services=services, log=logger)
    try:
        return await generate_tweet(GenerateTweetPayload(scheduled_tweet_id=row_id), ctx)
    except Exception as exc:
        return exc


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, kinds: tuple[str, ...] = ("generate_tweet",)
) -> AsyncIterator[Worker]:
    """A Worker running `kinds`, in this event loop."""
    worker = Worker(settings, kinds=list(kinds))
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 10)
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
