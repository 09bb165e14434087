"""A row lock held by someone else (an operator's open transaction, a stuck migration) must not
stall posting silently: the worker's statements give up after `lock_timeout`, an alert says why,
the job retries, and one blocked post does not hold up the others.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from tests.waiting import wait_for
from tests.workers import running
from worker.alerts.policy import AlertPolicy
from worker.runtime.worker import Worker


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchone()  # type: ignore[arg-type]


def schedule(conn: psycopg.Connection, content: str) -> int:
    row = one(
        conn, "insert into public.scheduled_tweets (content) values (%s) returning id", content
    )
    assert row is not None
    return int(row["id"])


def status(conn: psycopg.Connection, row_id: int) -> str:
    row = one(conn, "select status from public.scheduled_tweets where id = %s", row_id)
    assert row is not None
    return str(row["status"])


def stall_alert(conn: psycopg.Connection) -> dict[str, Any] | None:
    return one(conn, "select * from public.alerts where dedupe_key = 'db_stall:post_tweet'")


async def test_a_held_row_lock_raises_an_alert_and_the_post_goes_out_once_it_is_released(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    settings = stack.settings(dsn, poll_interval_s=0.3, db_lock_timeout_s=1.0)
    worker = Worker(settings, kinds=["post_tweet"])
    worker.alerts.policy = AlertPolicy(check_interval_s=0.2)
    with psycopg.connect(dsn) as operator:  # an open transaction holding the row
        row_id = schedule(conn, "blocked for a while")
        operator.execute(
            "select 1 from public.scheduled_tweets where id = %s for update", (row_id,)
        )
        async with running(worker):
            alert = await wait_for(lambda: stall_alert(conn), timeout=15, message="the stall alert")
            assert alert["level"] == "warning" and alert["resolved_at"] is None
            assert "lock" in alert["message"] and "post_tweet" in alert["message"]
            job = one(conn, "select * from public.jobs where kind = 'post_tweet'")
            assert job is not None and "lock" in (job["last_error"] or "")
            assert stack.x.posted_tweets() == []
            operator.rollback()  # the operator lets go
            await wait_for(lambda: status(conn, row_id) == "posted", timeout=30, message="posted")
            resolved = await wait_for(
                lambda: (a := stall_alert(conn)) and a["resolved_at"] and a,
                timeout=10,
                message="the stall alert resolved once a post succeeds again",
            )
    assert resolved["resolved_at"] is not None
    assert len(stack.x.posted_tweets()) == 1


async def test_one_locked_row_does_not_hold_up_the_other_posts(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    settings = stack.settings(dsn, poll_interval_s=0.3, db_lock_timeout_s=20.0)
    with psycopg.connect(dsn) as operator:
        blocked = schedule(conn, "held by an open transaction")
        operator.execute(
            "select 1 from public.scheduled_tweets where id = %s for update", (blocked,)
        )
        free = schedule(conn, "nothing in my way")
        async with running(Worker(settings, kinds=["post_tweet"])):
            # The blocked post waits on its row without holding the quota row every post needs.
            await wait_for(lambda: status(conn, free) == "posted", timeout=10, message="posted")
            assert status(conn, blocked) == "pending"
            operator.rollback()
            await wait_for(lambda: status(conn, blocked) == "posted", timeout=15, message="posted")
    assert len(stack.x.posted_tweets()) == 2
