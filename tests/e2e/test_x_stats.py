"""Stats collection through a real Worker, real tweepy, the X stand-in and a real Postgres.

250 tweets cost exactly 3 requests, whichever read is cheaper: 3 pages of the account's own
timeline (owned reads, $0.001 a post) at X's published prices, or 3 lookups of 100 ids ($0.005 a
post) when the pricing row makes those cheaper. Every collection writes one stats row per tweet
and refreshes tweets.engagement; the second collection of the day costs nothing, since X bills a
post once per UTC day, and chirpbase's recorded price is what the stand-in billed.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from sandbox.stack import SandboxStack
from sandbox.x_api import LOOKUP, USER_TWEETS
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


@pytest.mark.parametrize(
    ("owned_read", "source", "endpoint", "usage_row", "unit_price"),
    [
        (None, "owned_timeline", USER_TWEETS, "users_tweets", 0.001),
        (0.01, "lookup", LOOKUP, "tweets_lookup", 0.005),
    ],
)
async def test_stats_for_250_tweets_take_three_requests_of_the_cheaper_read(
    stack: SandboxStack,
    conn: psycopg.Connection,
    dsn: str,
    owned_read: float | None,
    source: str,
    endpoint: str,
    usage_row: str,
    unit_price: float,
) -> None:
    if owned_read is not None:
        conn.execute(
            "update public.configs set value = jsonb_set(value, '{x,owned_read}', %s)"
            " where key = 'pricing'",
            (Jsonb(owned_read),),
        )
    me = stack.x.me.id
    ids = []
    posted = []
    now = datetime.now(UTC)
    for i in range(N):
        # Posted minutes ago, as the hourly collection finds them: on the timeline already (a
        # new post shows there only after the stand-in's timeline lag).
        tweet = stack.x.create_tweet(
            me, f"post number {i}", created_at=now - timedelta(minutes=i, seconds=3)
        )
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
        posted.append(tweet.created_at)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.tweets (tweet_id, content, posted_at) values (%s, %s, %s)",
            [(tweet_id, f"post number {i}", posted[i]) for i, tweet_id in enumerate(ids)],
        )
        # Outside the 30-day window: not looked up (X would refuse its private metrics anyway).
        cur.execute(
            "insert into public.tweets (tweet_id, content, posted_at)"
            " values ('1799999999999999999', 'an old one', now() - interval '40 days')"
        )

    async with running(stack, dsn):
        job = await collect(conn)
        assert job["result"]["tweets"] == N and job["result"]["source"] == source
        estimated = job["result"]["estimated_usd"]
        assert estimated["lookup"] == pytest.approx(N * 0.005)
        assert estimated["owned_timeline"] == pytest.approx(N * (owned_read or 0.001))
        # Three full pages at least; X's short and empty timeline pages cost more requests (not
        # reads), at most twice the minimum. Lookups come in full batches of 100.
        first = job["result"]["requests"]
        assert stack.x.request_count(endpoint) == first
        assert stack.x.request_count(LOOKUP) + stack.x.request_count(USER_TWEETS) == first
        assert (3 <= first <= 6) if source == "owned_timeline" else first == 3
        assert job["result"].get("looked_up", 0) == (0 if source == "owned_timeline" else N)

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
        requests = first + job["result"]["requests"]

    assert stack.x.request_count(endpoint) == requests  # one source, never both
    assert stack.x.request_count(LOOKUP) + stack.x.request_count(USER_TWEETS) == requests
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
    usage = rows(conn, "select * from public.api_usage where endpoint = %s", usage_row)[0]
    assert (usage["calls"], usage["reads"]) == (requests, 2 * N)
    # Billed once per post per UTC day: the second collection of the day was free.
    assert usage["units"] == N
    assert float(usage["estimated_cost_usd"]) == pytest.approx(N * unit_price)
    # What chirpbase recorded for X is what the stand-in billed (the timeline needs the
    # account's id, read once from GET /2/users/me: a User: Read on both sides).
    recorded = rows(
        conn,
        "select sum(estimated_cost_usd)::float8 as usd from public.api_usage"
        " where endpoint not like 'openai:%%'",
    )[0]["usd"]
    assert recorded == pytest.approx(stack.x.billing.spent_usd)
    me_read = 0.010 if source == "owned_timeline" else None
    assert stack.x.billing.by_operation().get("user_read") == pytest.approx(me_read)
