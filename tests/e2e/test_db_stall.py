"""A row lock held by someone else (an operator's open transaction, a stuck migration) must not
stall posting silently: the worker's statements give up after `lock_timeout`, an alert says why,
the job retries, and one blocked post does not hold up the others.
"""

from __future__ import annotations

from typing import Any

import psycopg

from sandbox.stack import SandboxStack
from tests.e2e.posting import job_of, row_of, rows, schedule
from tests.waiting import wait_for
from tests.workers import running
from worker.alerts.policy import AlertPolicy
from worker.runtime.worker import Worker


def status(conn: psycopg.Connection, row_id: int) -> str:
    return str(row_of(conn, row_id)["status"])


def stall_alert(conn: psycopg.Connection) -> dict[str, Any] | None:
    found = rows(conn, "select * from public.alerts where dedupe_key = 'db_stall:post_tweet'")
    return found[0] if found else None


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
            job = job_of(conn, row_id)
            assert "lock" in (job["last_error"] or "")
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
