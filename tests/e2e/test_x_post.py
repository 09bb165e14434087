"""Posting through a real Worker, real tweepy, the X stand-in and a real Postgres.

One scheduled row becomes exactly one tweet, with its image, whatever X does in between: rate
limits (with and without reset headers) make the job wait without spending attempts, usage caps
(ours and X's) stop posting with an alert and drop nothing, and an unknown outcome (503, a
response lost after the tweet was created) is reconciled instead of posted twice. A text over
280 weighted characters never reaches X.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, LIKE, MEDIA_METADATA, MEDIA_UPLOAD, USER_TWEETS
from tests.e2e.posting import job_of, one, png, quota_used, rows, schedule
from tests.waiting import wait_for
from tests.workers import running as run_worker
from tests.xaccess import use_enterprise
from worker.clients.storage import ImageStore
from worker.content.images import fit_for_x
from worker.runtime.worker import Worker

KINDS = ["post_tweet", "like_reply"]


def running(
    stack: SandboxStack, dsn: str, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[Worker]:
    """A worker for these tests' kinds against the stack."""
    values: dict[str, Any] = {"poll_interval_s": 0.5, **overrides}
    return run_worker(Worker(stack.settings(dsn, **values), kinds=KINDS))


async def posted(conn: psycopg.Connection, row_id: int, timeout: float = 15) -> dict[str, Any]:
    await wait_for(
        lambda: conn.execute(
            "select 1 from public.scheduled_tweets where id = %s and status = 'posted'", (row_id,)
        ).fetchone(),
        timeout=timeout,
        message=f"scheduled_tweets {row_id} posted",
    )
    return one(conn, "select * from public.scheduled_tweets where id = %s", row_id)


async def test_scheduled_row_with_image_becomes_one_tweet_with_media_and_alt_text(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    settings = stack.settings(dsn)
    fitted = fit_for_x(png())
    store = ImageStore.from_settings(settings)
    try:
        url = await store.upload_image(fitted)
    finally:
        await store.aclose()
    alt = "A yellow sun over a blue sky."
    with conn.transaction():  # the job must not see the row before its image
        row_id = schedule(conn, "Sunny side of Postgres ☀️")
        conn.execute(
            "update public.scheduled_tweets set image_path = %s, image_url = %s, alt_text = %s"
            " where id = %s",
            (fitted.filename, url, alt, row_id),
        )

    async with running(stack, dsn):
        row = await posted(conn, row_id)

    tweets = stack.x.posted_tweets()
    assert [t.source_text for t in tweets] == ["Sunny side of Postgres ☀️"]
    # As X stores it: the media link appended, its entity naming the image.
    assert tweets[0].text.startswith("Sunny side of Postgres ☀️ https://t.co/")
    assert tweets[0].urls[-1]["media_key"] == tweets[0].media_keys[0]
    assert len(tweets[0].media_keys) == 1
    assert tweets[0].made_with_ai is False  # the operator's own image, not a generated one
    media = next(m for m in stack.x.media.values() if m.media_key == tweets[0].media_keys[0])
    assert media.alt_text == alt
    assert media.size == fitted.size  # the very bytes that went to Storage
    assert media.mime_type == fitted.mime
    assert stack.x.request_count(MEDIA_UPLOAD) == 1 and stack.x.request_count(MEDIA_METADATA) == 1

    assert row["tweet_id"] == tweets[0].id and row["error"] is None and row["posted_at"]
    tweet = one(conn, "select * from public.tweets")
    assert tweet["tweet_id"] == tweets[0].id
    assert (tweet["image_url"], tweet["media_id"], tweet["alt_text"]) == (url, media.id, alt)
    assert tweet["scheduled_tweet_id"] == row_id and tweet["posted_at"] is not None

    usage = {r["endpoint"]: r for r in rows(conn, "select * from public.api_usage")}
    assert usage["tweets"]["posts"] == 1 and usage["tweets"]["calls"] == 1
    assert usage["tweets"]["rate_limit_limit"] is not None
    assert usage["tweets"]["rate_limit_remaining"] is not None
    assert usage["media_upload"]["calls"] == 1 and usage["media_metadata"]["calls"] == 1
    assert float(usage["tweets"]["estimated_cost_usd"]) > 0
    assert quota_used(conn, "posts") == 1
    job = job_of(conn, row_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert job["result"]["media_id"] == media.id


async def test_rate_limited_jobs_wait_for_the_reset_without_spending_attempts(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    use_enterprise(stack.x, conn)  # the like path too
    alice = stack.x.add_user("alice_dev")
    mention = stack.x.add_mention(alice.id, "what a take")
    post_window = stack.x.exhaust_rate_limit(CREATE_TWEET, reset_in=2.0)
    like_window = stack.x.exhaust_rate_limit(LIKE, reset_in=2.0)
    # X announces the reset in whole epoch seconds.
    announced = datetime.fromtimestamp(int(post_window.reset_at), UTC)
    first = schedule(conn, "rate limits are a fact of life")
    second = schedule(conn, "and so is waiting politely")
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values (%s, %s, %s)",
        (mention.id, alice.id, mention.text),
    )

    async with running(stack, dsn):
        waiting = await wait_for(
            lambda: (
                len(
                    found := rows(
                        conn, "select * from public.jobs where last_error is not null order by id"
                    )
                )
                == 3
                and found
            ),
            timeout=10,
            message="the first attempts to be refused and snoozed",
        )
        # The second post asks X only if it started before the first 429 was seen: after it,
        # the spent window is known and the job waits without a call.
        assert 1 <= stack.x.request_count(CREATE_TWEET, status=429) <= 2
        assert stack.x.request_count(LIKE, status=429) == 1
        for job in waiting:  # snoozed: back in the queue until the reset, no attempt spent
            assert job["attempts"] == 0
            assert job["run_at"] >= announced, (job["run_at"], announced)
            assert "rate limited" in job["last_error"]
        pending = one(conn, "select status from public.scheduled_tweets where id = %s", first)
        assert pending["status"] == "pending"  # not left `posting`: X certainly created nothing

        await posted(conn, first)
        await posted(conn, second)
        await wait_for(
            lambda: (
                conn.execute(
                    "select liked from public.replies where reply_id = %s", (mention.id,)
                ).fetchone()
                == (True,)
            ),
            timeout=10,
            message="the reply liked",
        )

    jobs = rows(conn, "select * from public.jobs order by id")
    assert [(j["kind"], j["status"], j["attempts"]) for j in jobs] == [
        ("post_tweet", "succeeded", 1),
        ("post_tweet", "succeeded", 1),
        ("like_reply", "succeeded", 1),
    ]
    for job in jobs:  # run_at moved to the reset and stayed there
        assert job["run_at"] >= announced
        assert job["created_at"] < announced
    ok = [r for r in stack.x.requests if r.endpoint in (CREATE_TWEET, LIKE) and r.status < 300]
    assert len(ok) == 3
    assert all(r.at >= min(post_window.reset_at, like_window.reset_at) for r in ok)
    assert len(stack.x.posted_tweets()) == 2 and len(stack.x.like_requests(mention.id)) == 1
    assert quota_used(conn, "posts") == 2  # refunded while waiting, taken once each
    usage = one(conn, "select * from public.api_usage where endpoint = 'tweets'")
    assert usage["posts"] == 2 and usage["rate_limit_reset"] is not None


async def test_429_without_reset_headers_waits_a_minute_then_posts(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    stack.x.rate_limit_without_reset_next(CREATE_TWEET)
    row_id = schedule(conn, "no reset header, no panic")
    async with running(stack, dsn):
        await wait_for(
            lambda: (
                stack.x.request_count(CREATE_TWEET, status=429) == 1
                and job_of(conn, row_id)["status"] == "queued"
            ),
            timeout=10,
            message="the refused attempt to be snoozed",
        )
        job = job_of(conn, row_id)
        now = datetime.now(UTC)
        assert job["attempts"] == 0
        assert now + timedelta(seconds=40) < job["run_at"] < now + timedelta(seconds=90)
        assert stack.x.posted_tweets() == []
        # A minute passes (for the job).
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute("update public.jobs set run_at = now() where id = %s", (job["id"],))
        await posted(conn, row_id)
    assert len(stack.x.posted_tweets()) == 1
    job = job_of(conn, row_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)


async def test_our_monthly_post_cap_stops_posting_with_alerts_and_drops_nothing(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute(
        "update public.configs set value = value || '{\"monthly_post_cap\": 2}' where key = 'quotas'"
    )
    assert conn.execute("select public.consume_quota('posts', 1)").fetchone() == (True,)
    first = schedule(conn, "the last post this month")
    async with running(stack, dsn):
        await posted(conn, first)  # 2 of 2: at the cap, past the 80 % threshold
        second = schedule(conn, "one too many")
        await wait_for(
            lambda: job_of(conn, second)["last_error"],
            timeout=10,
            message="the second post to be held back",
        )
        job = job_of(conn, second)
        assert job["status"] == "queued" and job["attempts"] == 0
        assert job["run_at"] > datetime.now(UTC) + timedelta(minutes=5)
        assert "quota" in job["last_error"]
        row = one(conn, "select status, error from public.scheduled_tweets where id = %s", second)
        assert row == {"status": "pending", "error": None}  # waiting, not failed
        alerts = {
            a["kind"]: a
            for a in rows(conn, "select * from public.alerts where resolved_at is null")
        }
        assert alerts["quota_threshold"]["level"] == "warning"
        assert alerts["quota_cap_reached"]["level"] == "critical"
        assert stack.x.request_count(CREATE_TWEET) == 1  # the capped post never reached X

        # The operator raises the cap; once the job's time comes, it posts.
        conn.execute(
            "update public.configs set value = value || '{\"monthly_post_cap\": 3}'"
            " where key = 'quotas'"
        )
        conn.execute("update public.jobs set run_at = now() where id = %s", (job["id"],))
        await posted(conn, second)
    assert [t.text for t in stack.x.posted_tweets()] == ["the last post this month", "one too many"]
    assert quota_used(conn, "posts") == 3
    assert job_of(conn, second)["attempts"] == 1


async def test_x_usage_cap_429_stops_posting_with_an_alert_and_drops_nothing(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.set_usage_cap(posts=0)
    row_id = schedule(conn, "capped by X")
    async with running(stack, dsn):
        await wait_for(
            lambda: job_of(conn, row_id)["last_error"],
            timeout=10,
            message="the post to be held back",
        )
        job = job_of(conn, row_id)
        assert job["status"] == "queued" and job["attempts"] == 0
        assert job["run_at"] > datetime.now(UTC) + timedelta(minutes=50)
        row = one(conn, "select status, error from public.scheduled_tweets where id = %s", row_id)
        assert row["status"] == "pending" and "usage cap" in row["error"]
        alert = one(conn, "select * from public.alerts where kind = 'x_usage_capped'")
        assert alert["level"] == "critical" and alert["resolved_at"] is None
        assert stack.x.request_count(CREATE_TWEET, status=429) == 1
        assert stack.x.posted_tweets() == []
        assert quota_used(conn, "posts") == 0  # refunded: X created nothing

        stack.x.set_usage_cap(posts=None)  # the next billing cycle
        conn.execute("update public.jobs set run_at = now() where id = %s", (job["id"],))
        await posted(conn, row_id)
    assert [t.text for t in stack.x.posted_tweets()] == ["capped by X"]
    assert job_of(conn, row_id)["attempts"] == 1


async def test_response_dropped_after_create_is_reconciled_not_posted_twice(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.drop_after_create_next()
    row_id = schedule(conn, "did it go out? yes, once")
    async with running(stack, dsn):
        row = await posted(conn, row_id, timeout=20)  # after the queue's ~5 s backoff
    tweets = stack.x.posted_tweets()
    assert [t.text for t in tweets] == ["did it go out? yes, once"]
    assert row["tweet_id"] == tweets[0].id
    assert stack.x.request_count(CREATE_TWEET) == 1  # no second create at all
    assert stack.x.request_count(USER_TWEETS) >= 1  # looked before posting again
    assert one(conn, "select count(*) as n, min(tweet_id) as id from public.tweets") == {
        "n": 1,
        "id": tweets[0].id,
    }
    job = job_of(conn, row_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    assert job["result"]["reconciled"] is True
    # X billed one post and one post is counted, both in the quota and in api_usage.
    assert quota_used(conn, "posts") == 1
    assert one(conn, "select posts from public.api_usage where endpoint = 'tweets'")["posts"] == 1


async def test_503_then_success_reconciles_first_and_posts_once(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    stack.x.fail_next(CREATE_TWEET, 1, status=503)
    row_id = schedule(conn, "third time lucky? second.")
    # X may still show the post on its timeline later: "not posted" only after the window.
    async with running(stack, dsn, reconcile_window_s=1.0):
        await wait_for(
            lambda: (j := job_of(conn, row_id))["status"] == "queued" and j["attempts"] == 1,
            timeout=10,
            message="the 503 attempt to be recorded",
        )
        row = one(conn, "select status from public.scheduled_tweets where id = %s", row_id)
        assert row["status"] == "posting"  # outcome unknown: the intent stays recorded
        # The reconciliation read is rate limited too: that must wait, not burn an attempt.
        window = stack.x.exhaust_rate_limit(USER_TWEETS, reset_in=1.5)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:  # skip the ~5 s backoff
            admin.execute(
                "update public.jobs set run_at = now() where id = %s", (job_of(conn, row_id)["id"],)
            )
        row = await posted(conn, row_id)
    tweets = stack.x.posted_tweets()
    assert [t.text for t in tweets] == ["third time lucky? second."]
    assert row["tweet_id"] == tweets[0].id
    creates = [r for r in stack.x.requests if r.endpoint == CREATE_TWEET]
    assert [r.status for r in creates] == [503, 201]
    lookups = [r for r in stack.x.requests if r.endpoint == USER_TWEETS]
    # Refused, then looked at (X's short and empty pages may take more than one request; a
    # look inside the consistency window is followed by another after it).
    assert lookups[0].status == 429 and len(lookups) >= 2
    assert {r.status for r in lookups[1:]} == {200}
    assert lookups[1].at >= int(window.reset_at) and creates[1].at > lookups[-1].at
    job = job_of(conn, row_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    assert not job["result"].get("reconciled")
    assert quota_used(conn, "posts") == 1
    assert quota_used(conn, "reads") == 0  # the timeline came back empty: reservation returned
    assert one(conn, "select count(*) as n from public.tweets")["n"] == 1


async def test_text_over_280_weighted_characters_is_refused_before_any_call(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    row_id = schedule(conn, "short for now")
    # 152 code points, but X counts 130 CJK characters as 260, plus a space and a 23-char URL.
    too_long = "界" * 130 + " https://example.com/a"
    assert len(too_long) <= 280
    with psycopg.connect(admin_dsn, autocommit=True) as admin:  # past the insert trigger
        admin.execute(
            "update public.scheduled_tweets set content = %s where id = %s", (too_long, row_id)
        )
    async with running(stack, dsn):
        await wait_for(
            lambda: job_of(conn, row_id)["status"] == "dead",
            timeout=10,
            message="the job to give up",
        )
    row = one(conn, "select status, error from public.scheduled_tweets where id = %s", row_id)
    assert row["status"] == "failed"
    assert "weighted length 284 > 280" in row["error"]
    assert "284" in job_of(conn, row_id)["last_error"]
    assert stack.x.request_count() == 0  # not a single request reached X
    assert quota_used(conn, "posts") == 0
    assert one(conn, "select count(*) as n from public.tweets")["n"] == 0
