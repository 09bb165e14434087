"""Regression tests for the two faults the chaos run found in `post_tweet`, made deterministic.

1. A crash (or a lost connection) between taking the post's quota and recording the intent to
   post kept a reservation no row carried: the monthly count drifted above what X billed, and
   with a cap set exactly, the last scheduled post waited forever for quota. Quota and intent
   now commit together. Here the worker is killed with SIGKILL exactly in that window: the
   intent's UPDATE is held on a row lock the test owns.
2. Reconciliation after a lost answer looked at the latest 100 tweets only. When more than a
   page of newer tweets came first, it missed the tweet, posted again, X refused the duplicate,
   and the row failed while its tweet stood on X unrecorded. It now pages back to the row's
   start of posting.

These use the shared cluster (they restart nothing), a clone per test.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from sandbox.stack import SandboxStack, ThreadedSandbox
from sandbox.x_api import CREATE_TWEET
from tests.processes import WorkerProcess
from tests.waiting import wait_for, wait_for_sync
from tests.workers import running
from worker.runtime.worker import Worker


@pytest.fixture
def threaded_stack(admin_dsn: str) -> Iterator[SandboxStack]:
    with ThreadedSandbox(admin_dsn) as s:
        yield s


def _quota(conn: psycopg.Connection) -> float:
    row = conn.execute(
        "select coalesce(sum(used), 0) from public.quota_usage where resource = 'posts'"
    ).fetchone()
    assert row is not None
    return float(row[0])


def _row(conn: psycopg.Connection, row_id: int) -> tuple[str, str | None]:
    row = conn.execute(
        "select status, tweet_id from public.scheduled_tweets where id = %s", (row_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.timeout(90)
def test_kill_9_between_quota_and_intent_keeps_no_reservation(
    threaded_stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack = threaded_stack
    conn.execute(
        "update public.configs set value = value || '{\"monthly_post_cap\": 1}' where key = 'quotas'"
    )
    env = {
        **stack.env(dsn),
        "DOORBELL_ENABLED": "false",
        "POLL_INTERVAL_S": "0.5",
        "LEASE_S": "2",
        "LOG_LEVEL": "INFO",
    }
    with psycopg.connect(dsn) as holder:  # a transaction that holds the row's lock
        row_id = conn.execute(
            "insert into public.scheduled_tweets (content) values ('one post, one unit of quota')"
            " returning id"
        ).fetchone()[0]
        holder.execute("select 1 from public.scheduled_tweets where id = %s for update", (row_id,))
        doomed = WorkerProcess(env, name="doomed", kinds="post_tweet").start()
        try:
            doomed.wait_ready()
            # The worker reaches the intent (UPDATE ... set status = 'posting') and waits on the
            # lock: it has asked for the quota already. That is the window.
            wait_for_sync(
                lambda: (
                    conn.execute(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                        " and datname = current_database() and query like %s",
                        ("%scheduled_tweets%posting%",),
                    ).fetchone()[0]
                    == 1
                ),
                timeout=20,
                message="the intent waiting on the row lock",
            )
            doomed.kill()
        finally:
            doomed.stop()
        holder.rollback()
    # The killed worker's transaction never committed: no quota is held, the row is still ready.
    wait_for_sync(
        lambda: (
            conn.execute(
                "select count(*) from pg_stat_activity where application_name like %s"
                " and datname = current_database()",
                ("chirpbase-worker-doomed%",),
            ).fetchone()[0]
            == 0
        ),
        timeout=10,
        message="the killed worker's sessions gone",
    )
    assert _quota(conn) == 0
    assert _row(conn, row_id) == ("pending", None)

    survivor = WorkerProcess(env, name="survivor", kinds="post_tweet").start()
    try:
        survivor.wait_ready()
        wait_for_sync(
            lambda: (
                conn.execute("select public.reap_expired_leases()").fetchone() is not None
                and _row(conn, row_id)[0] == "posted"
            ),
            timeout=30,
            interval=0.2,
            message="posted by the next worker (cap 1 is enough)",
        )
    finally:
        survivor.stop()
    assert _quota(conn) == 1 == stack.x.posts_created


async def test_reconcile_finds_a_tweet_older_than_the_latest_page(
    admin_dsn: str, conn: psycopg.Connection, dsn: str
) -> None:
    async with SandboxStack(admin_dsn) as stack:
        stack.x.drop_after_create_next()  # created on X, the answer lost
        row_id = conn.execute(
            "insert into public.scheduled_tweets (content) values ('lost answer, found later')"
            " returning id"
        ).fetchone()[0]
        # X's timeline may lag: the retry looks, and after a short window looks again.
        settings = stack.settings(dsn, poll_interval_s=0.3, reconcile_window_s=3.0)
        worker = Worker(settings, kinds=["post_tweet"])
        async with running(worker):
            await wait_for(
                lambda: conn.execute(
                    "select attempts = 1 and status = 'queued' from public.jobs"
                    " where kind = 'post_tweet'"
                ).fetchone()[0],
                timeout=15,
                message="first attempt: outcome unknown, retry scheduled",
            )
            # Before the retry, the account posts more than a page of other tweets.
            for i in range(150):
                stack.x.create_tweet(stack.x.me.id, f"another tweet {i}")
            conn.execute("update public.jobs set run_at = now() where kind = 'post_tweet'")
            await wait_for(
                lambda: _row(conn, row_id)[0] in ("posted", "failed"),
                timeout=15,
                message="retry finished",
            )
        status, tweet_id = _row(conn, row_id)
        originals = [t for t in stack.x.posted_tweets() if t.text == "lost answer, found later"]
        assert len(originals) == 1
        assert (status, tweet_id) == ("posted", originals[0].id)
        assert stack.x.request_count(CREATE_TWEET) == 1  # found, not posted again
        assert _quota(conn) == 1
