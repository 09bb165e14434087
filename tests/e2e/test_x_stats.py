"""Stats collection through a real Worker, real tweepy, the X stand-in and a real Postgres.

250 tweets cost exactly 3 lookup requests (100 ids each); every collection writes one stats row
per tweet and refreshes tweets.engagement with the latest numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import LOOKUP
from tests.waiting import wait_for
from tests.workers import running as run_worker
from worker.runtime.worker import Worker

N = 250


def running(stack: SandboxStack, dsn: str) -> contextlib.AbstractAsyncContextManager[Worker]:
    """A worker for these tests' kinds against the stack."""
    return run_worker(Worker(stack.settings(dsn, poll_interval_s=0.5), kinds=["collect_stats"]))


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def collect(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("select public.enqueue_job('collect_stats')").fetchone()
    assert row is not None
    job_id = row[0]
    await wait_for(
        lambda: conn.execute(
            "select 1 from public.jobs where id = %s and status = 'succeeded'", (job_id,)
        ).fetchone(),
        timeout=15,
        message="collect_stats to succeed",
    )
    return rows(conn, "select * from public.jobs where id = %s", job_id)[0]


async def test_stats_for_250_tweets_take_three_lookups_per_collection(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    me = stack.x.me.id
    ids = []
    for i in range(N):
        tweet = stack.x.create_tweet(me, f"post number {i}")
        stack.x.advance_metrics(
            tweet.id,
            like_count=i,
            retweet_count=i // 2,
            reply_count=i % 7,
            impression_count=100 * i,
            quote_count=i % 3,
            bookmark_count=i % 5,
        )
        ids.append(tweet.id)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.tweets (tweet_id, content, posted_at)"
            " values (%s, %s, now() - make_interval(mins => %s))",
            [(tweet_id, f"post number {i}", i) for i, tweet_id in enumerate(ids)],
        )
        # Outside the 30-day window: not looked up (X would refuse its private metrics anyway).
        cur.execute(
            "insert into public.tweets (tweet_id, content, posted_at)"
            " values ('1799999999999999999', 'an old one', now() - interval '40 days')"
        )

    async with running(stack, dsn):
        job = await collect(conn)
        assert job["result"]["tweets"] == N and job["result"]["requests"] == 3
        assert stack.x.request_count(LOOKUP) == 3

        stats = rows(conn, "select * from public.stats")
        assert len(stats) == N and len({s["tweet_id"] for s in stats}) == N
        assert len({s["collected_at"] for s in stats}) == 1  # one collection, one timestamp
        by_id = {s["tweet_id"]: s for s in stats}
        for i, tweet_id in enumerate(ids):
            s = by_id[tweet_id]
            assert (s["likes"], s["retweets"], s["replies"], s["impressions"]) == (
                i,
                i // 2,
                i % 7,
                100 * i,
            )
            assert (s["quotes"], s["bookmarks"]) == (i % 3, i % 5)
        engagement = {
            r["tweet_id"]: r["engagement"] for r in rows(conn, "select * from public.tweets")
        }
        assert engagement[ids[42]]["likes"] == 42 and engagement[ids[42]]["impressions"] == 4200
        assert engagement["1799999999999999999"] == {}

        # The numbers move on X; the next collection adds a row per tweet and refreshes them.
        for tweet_id in ids:
            stack.x.advance_metrics(tweet_id, like_count=5, impression_count=1000)
        job = await collect(conn)
        assert job["result"]["tweets"] == N

    assert stack.x.request_count(LOOKUP) == 6  # 3 per collection, never more
    counts = rows(
        conn,
        "select tweet_id, count(*) as n, count(distinct collected_at) as c"
        " from public.stats group by tweet_id",
    )
    assert len(counts) == N and {(r["n"], r["c"]) for r in counts} == {(2, 2)}
    latest = rows(
        conn,
        "select distinct on (tweet_id) tweet_id, likes from public.stats"
        " order by tweet_id, collected_at desc",
    )
    assert {r["tweet_id"]: r["likes"] for r in latest} == {t: i + 5 for i, t in enumerate(ids)}
    engagement = {r["tweet_id"]: r["engagement"] for r in rows(conn, "select * from public.tweets")}
    assert engagement[ids[42]]["likes"] == 47 and engagement[ids[42]]["impressions"] == 5200
    assert all(engagement[t]["collected_at"] for t in ids)
    usage = rows(conn, "select * from public.api_usage where endpoint = 'tweets_lookup'")[0]
    assert (usage["calls"], usage["reads"]) == (6, 2 * N)
