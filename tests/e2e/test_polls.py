"""Polls end to end: a real worker posts a scheduled poll through tweepy's session to the X
stand-in, and the hourly stats collection reads its results (no request of its own) into
`polls` as they move and after the poll closes. A malformed poll that got past the database
(its door switched off) is refused by the worker before any call to X."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, LOOKUP, ME, USER_TWEETS
from tests.waiting import wait_for
from tests.workers import running as run_worker
from worker.runtime.worker import Worker


def running(stack: SandboxStack, dsn: str) -> contextlib.AbstractAsyncContextManager[Worker]:
    settings = stack.settings(dsn, poll_interval_s=0.3)
    return run_worker(Worker(settings, kinds=["post_tweet", "collect_stats"]))


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchone()  # type: ignore[arg-type]


def status(conn: psycopg.Connection, row_id: int) -> str | None:
    row = one(conn, "select status from public.scheduled_tweets where id = %s", row_id)
    return row["status"] if row else None


async def collect(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("select public.enqueue_job('collect_stats')").fetchone()
    assert row is not None
    job_id = row[0]
    await wait_for(
        lambda: one(
            conn, "select 1 from public.jobs where id = %s and status = 'succeeded'", job_id
        ),
        timeout=15,
        message="collect_stats to succeed",
    )
    job = one(conn, "select result from public.jobs where id = %s", job_id)
    assert job is not None
    return dict(job["result"])


async def test_a_poll_is_posted_and_its_results_collected(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    row = one(
        conn,
        "insert into public.scheduled_tweets (content, poll_options, poll_duration_minutes)"
        " values ('Tabs or spaces?', '{tabs, spaces, \"both 😀\"}', 60) returning id",
    )
    assert row is not None
    row_id = row["id"]
    async with running(stack, dsn):
        await wait_for(lambda: status(conn, row_id) == "posted", timeout=20, message="posted")
        posted = one(conn, "select tweet_id from public.scheduled_tweets where id = %s", row_id)
        assert posted is not None
        tweet_id = posted["tweet_id"]
        poll = stack.x.polls.get(tweet_id)
        assert poll is not None  # X holds the poll, as sent
        assert (poll.labels, poll.duration_minutes) == (["tabs", "spaces", "both 😀"], 60)

        first = await collect(conn)
        assert first["polls"] == 1
        # The poll came with the reads the stats make anyway: no request of its own (a post the
        # timeline does not show yet is looked up, with its poll too).
        reads = stack.x.request_count(USER_TWEETS) + stack.x.request_count(LOOKUP)
        assert reads == first["requests"] >= 1
        assert set(stack.x.request_counts()) <= {CREATE_TWEET, ME, USER_TWEETS, LOOKUP}
        seen = one(conn, "select * from public.polls where tweet_id = %s", tweet_id)
        assert seen is not None
        assert seen["poll_id"] == poll.id
        assert [o["label"] for o in seen["options"]] == ["tabs", "spaces", "both 😀"]
        assert seen["voting_status"] == "open"
        assert seen["duration_minutes"] == 60

        stack.x.advance_time(30 * 60)
        stack.x.polls.vote(tweet_id, 1, 40)
        await collect(conn)
        moved = one(conn, "select * from public.polls where tweet_id = %s", tweet_id)
        assert moved is not None
        assert moved["total_votes"] >= seen["total_votes"] + 40
        assert moved["options"][0]["votes"] >= 40
        assert moved["collected_at"] > seen["collected_at"]

        stack.x.advance_time(60 * 60)
        await collect(conn)
        closed = one(conn, "select * from public.polls where tweet_id = %s", tweet_id)
        assert closed is not None
        assert closed["voting_status"] == "closed"
        assert closed["end_datetime"] == seen["end_datetime"]  # set when posted, never moved
        assert one(conn, "select count(*) as n from public.polls")["n"] == 1  # type: ignore[index]


async def test_a_malformed_poll_past_the_door_is_refused_before_any_call(
    stack: SandboxStack, conn: psycopg.Connection, admin_dsn: str, dsn: str
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            "alter table public.scheduled_tweets disable trigger scheduled_tweets_check_poll"
        )
        row = one(
            admin,
            "insert into public.scheduled_tweets (content, poll_options, poll_duration_minutes)"
            " values ('Pick', '{only}', 60) returning id",
        )
        admin.execute(
            "alter table public.scheduled_tweets enable trigger scheduled_tweets_check_poll"
        )
    assert row is not None
    async with running(stack, dsn):
        await wait_for(lambda: status(conn, row["id"]) == "failed", timeout=20, message="failed")
    failed = one(conn, "select error from public.scheduled_tweets where id = %s", row["id"])
    assert failed is not None
    assert "a poll has 2 to 4 options (X's rule); got 1" in failed["error"]
    assert stack.x.posted_tweets() == []
    assert stack.x.request_count("POST /2/tweets") == 0
