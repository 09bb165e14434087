"""Fencing tokens in the running worker: a run that lost its lease stops and changes nothing.

A lease can be lost while its handler is still running (a stall longer than the lease, a
database outage, a worker cut off): the reaper hands the job back and a new claim, possibly by
the same worker, runs it again. The worker keeps each claim apart by its token, cancels the
run whose lease is gone, and that run's outcome is refused by the database anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, USER_TWEETS
from tests.settings import make_settings
from tests.waiting import wait_for
from tests.workers import running
from worker import metrics
from worker.runtime.worker import Worker


@pytest.fixture
async def stack(admin_dsn: str) -> AsyncIterator[SandboxStack]:
    async with SandboxStack(admin_dsn) as s:
        yield s


def job(conn: psycopg.Connection, job_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select * from public.jobs where id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def reap_now(admin_dsn: str, job_id: int) -> None:
    """The lease runs out (a stall, an outage) and the reaper hands the job back."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            "update public.jobs set locked_until = now() - interval '1 second' where id = %s",
            (job_id,),
        )
        assert admin.execute("select public.reap_expired_leases()").fetchone() == (1,)


def lease_lost_count(kind: str) -> float:
    return metrics.JOBS.labels(kind, "lease_lost")._value.get()


async def test_a_job_reclaimed_by_the_same_worker_runs_as_a_second_claim(
    conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    job_id = conn.execute(
        "select public.enqueue_job('noop', '{\"duration_s\": 4}'::jsonb)"
    ).fetchone()[0]
    before = lease_lost_count("noop")
    worker = Worker(make_settings(dsn, lease_s=3), kinds=["noop"])
    async with running(worker):
        first = await wait_for(
            lambda: (row := job(conn, job_id))["status"] == "running" and row, message="claimed"
        )
        reap_now(admin_dsn, job_id)
        second = await wait_for(
            lambda: (
                (row := job(conn, job_id))["status"] == "running" and row["attempts"] == 2 and row
            ),
            message="re-claimed by the same worker",
        )
        assert second["locked_by"] == first["locked_by"] == worker.worker_id
        # The first run's lease is gone: it is cancelled, the second run goes on, tracked.
        await wait_for(
            lambda: lease_lost_count("noop") == before + 1,
            timeout=10,
            message="the first run cancelled for its lost lease",
        )
        await wait_for(lambda: worker.loop.running_count == 1, message="one run left")
        assert job(conn, job_id)["status"] == "running"
        done = await wait_for(
            lambda: (row := job(conn, job_id))["status"] == "succeeded" and row,
            timeout=15,
            message="the second run completes",
        )
        await wait_for(lambda: worker.loop.running_count == 0, message="the second run ends")
    assert done["attempts"] == 2 and done["result"]["attempt"] == 2
    assert second.get("lease_token") not in (None, first.get("lease_token"))


async def test_a_post_whose_lease_was_lost_mid_run_never_reaches_x(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    row_id = conn.execute(
        "insert into public.scheduled_tweets (content) values ('only the lease holder posts')"
        " returning id"
    ).fetchone()[0]
    # An earlier attempt's outcome was unknown long ago: this run reconciles, then posts.
    conn.execute(
        "update public.scheduled_tweets set status = 'posting',"
        " post_started_at = now() - interval '1 hour' where id = %s",
        (row_id,),
    )
    conn.execute("select public.consume_quota('posts', 1)")
    job_id = conn.execute(
        "select job_id from public.scheduled_tweets where id = %s", (row_id,)
    ).fetchone()[0]
    stack.x.inject_latency(USER_TWEETS, 2.5)  # the reconciliation read is slow
    settings = stack.settings(
        dsn,
        poll_interval_s=0.3,
        lease_s=3,
        x_connect_timeout_s=1,
        x_timeout_s=3.5,
        shutdown_grace_s=5,
        reconcile_window_s=1,
    )
    before = lease_lost_count("post_tweet")
    async with running(Worker(settings, kinds=["post_tweet"])):
        await wait_for(
            lambda: stack.x.in_flight(USER_TWEETS) == 1, timeout=10, message="reconciling"
        )
        reap_now(admin_dsn, job_id)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:  # another worker claims it
            claimed = admin.execute(
                "select id from public.claim_jobs('intruder', array['post_tweet'], 1,"
                " interval '60 seconds')"
            ).fetchall()
        assert claimed == [(job_id,)]
        await wait_for(
            lambda: (
                lease_lost_count("post_tweet") == before + 1
                or stack.x.request_count(CREATE_TWEET) > 0
            ),
            timeout=15,
            message="the stale run to stop (or to post)",
        )
    assert stack.x.request_count(CREATE_TWEET) == 0 and stack.x.posted_tweets() == []
    row = job(conn, job_id)
    assert (row["status"], row["locked_by"]) == ("running", "intruder")
    status = conn.execute(
        "select status from public.scheduled_tweets where id = %s", (row_id,)
    ).fetchone()
    assert status == ("posting",)
