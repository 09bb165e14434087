"""Reconciling an unknown outcome against an X that rewrites text and serves lagging timelines.

The answer to `POST /2/tweets` is lost after X created the tweet; the next attempt must find
it on the account's timeline, record it and not post again, although what X returns is not
what was sent (t.co links for every URL, bare domains included, a media link appended to an
image post, `&<>` as entities), a new post shows up on the timeline only after a while, and
pages come short or empty with a `next_token`. Through a real Worker, tweepy, the X stand-in
(realistic by default) and a real Postgres.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, USER_TWEETS
from tests.e2e.posting import due_now, job_of, one, quota_used, row_of, schedule, stored_image
from tests.waiting import wait_for
from tests.workers import running as run_worker
from worker.runtime.worker import Worker

# Short enough for a test, long enough to cover the stand-in's lag (set per test).
WINDOW_S = 6.0
X_TIMEOUTS = {"x_connect_timeout_s": 1.0, "x_timeout_s": 3.0, "shutdown_grace_s": 5.0}


def running(
    stack: SandboxStack, dsn: str, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[Worker]:
    values: dict[str, Any] = {
        "poll_interval_s": 0.3,
        "reconcile_window_s": WINDOW_S,
        **X_TIMEOUTS,
        **overrides,
    }
    return run_worker(Worker(stack.settings(dsn, **values), kinds=["post_tweet"]))


async def settled(conn: psycopg.Connection, row_id: int, timeout: float = 30) -> dict[str, Any]:
    """The row once it is posted or failed (either way the test then checks which)."""
    await wait_for(
        lambda: row_of(conn, row_id)["status"] in ("posted", "failed"),
        timeout=timeout,
        message=f"scheduled_tweets {row_id} posted or failed",
    )
    return row_of(conn, row_id)


def assert_posted_once(
    conn: psycopg.Connection, stack: SandboxStack, row_id: int, content: str
) -> None:
    """One tweet on X with this text, recorded as this row's tweet; one post counted."""
    mine = [t for t in stack.x.posted_tweets() if t.source_text == content]
    assert len(mine) == 1, [t.source_text for t in stack.x.posted_tweets()]
    row = row_of(conn, row_id)
    assert (row["status"], row["tweet_id"], row["error"]) == ("posted", mine[0].id, None)
    tweet = one(
        conn, "select tweet_id, content from public.tweets where scheduled_tweet_id = %s", row_id
    )
    assert tweet == {"tweet_id": mine[0].id, "content": content}
    assert stack.x.posts_created == 1 and quota_used(conn) == 1
    assert job_of(conn, row_id)["result"]["reconciled"] is True


async def with_image(stack: SandboxStack, conn: psycopg.Connection, dsn: str, content: str) -> int:
    path, url = await stored_image(stack, stack.settings(dsn, **X_TIMEOUTS))
    with conn.transaction():  # the job must not see the row before its image
        row_id = schedule(conn, content)
        conn.execute(
            "update public.scheduled_tweets set image_path = %s, image_url = %s, alt_text = %s"
            " where id = %s",
            (path, url, "a red rectangle", row_id),
        )
    return row_id


async def test_an_image_tweet_whose_answer_was_lost_is_found_despite_the_media_link(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.timeline_lag_s = 0.5
    stack.x.drop_after_create_next()
    content = "Our new logo, in red"
    row_id = await with_image(stack, conn, dsn, content)
    async with running(stack, dsn):
        await settled(conn, row_id)
    (tweet,) = stack.x.posted_tweets()
    assert tweet.text != content and tweet.text.startswith(content + " https://t.co/")
    assert_posted_once(conn, stack, row_id, content)
    assert stack.x.request_count(CREATE_TWEET) == 1


async def test_a_bare_domain_tweet_whose_answer_was_lost_is_found_despite_t_co(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.timeline_lag_s = 0.5
    stack.x.drop_after_create_next()
    content = "Docs & changelog <3 at chirpbase.dev"
    row_id = schedule(conn, content)
    async with running(stack, dsn):
        await settled(conn, row_id)
    (tweet,) = stack.x.posted_tweets()
    assert "chirpbase.dev" not in tweet.text and "&amp;" in tweet.text
    assert_posted_once(conn, stack, row_id, content)
    assert stack.x.request_count(CREATE_TWEET) == 1


async def test_a_post_missing_from_the_lagging_timeline_is_waited_for_not_posted_again(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    stack.x.timeline_lag_s = 4.0  # < WINDOW_S: the post shows up inside the window
    stack.x.drop_after_create_next()
    content = "eventually consistent, exactly once"
    row_id = schedule(conn, content)
    async with running(stack, dsn):
        await wait_for(
            lambda: (j := job_of(conn, row_id))["attempts"] == 1 and j["status"] == "queued",
            timeout=15,
            message="first attempt: outcome unknown",
        )
        # Retry at once, while the post is still missing from the timeline.
        due_now(admin_dsn, job_of(conn, row_id)["id"])
        await settled(conn, row_id)
    assert_posted_once(conn, stack, row_id, content)
    assert stack.x.request_count(CREATE_TWEET) == 1
    # It looked (and found nothing yet), waited inside the window, then looked again.
    assert stack.x.request_count(USER_TWEETS) >= 2


async def test_short_and_empty_pages_are_followed_to_the_post(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    stack.x.timeline_lag_s = 0.5
    stack.x.short_page_rate = 0.9
    stack.x.drop_after_create_next()
    content = "found on page seven"
    row_id = schedule(conn, content)
    async with running(stack, dsn):
        await wait_for(
            lambda: (j := job_of(conn, row_id))["attempts"] == 1 and j["status"] == "queued",
            timeout=15,
            message="first attempt: outcome unknown",
        )
        for i in range(60):  # newer posts push it back several (short) pages
            stack.x.create_tweet(stack.x.me.id, f"another post {i}")
        stack.x.advance_time(1.0)
        due_now(admin_dsn, job_of(conn, row_id)["id"])
        await settled(conn, row_id)
    mine = [t for t in stack.x.posted_tweets() if t.source_text == content]
    assert len(mine) == 1
    row = row_of(conn, row_id)
    assert (row["status"], row["tweet_id"]) == ("posted", mine[0].id)
    assert stack.x.request_count(CREATE_TWEET) == 1
    assert quota_used(conn) == 1
