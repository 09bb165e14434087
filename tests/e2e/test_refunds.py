"""The posts quota follows what X bills, whatever X answers in between.

- After X refuses a post as a duplicate, the post exists and X billed the call that created it:
  nothing is refunded.
- An attempt that carried a row over from an unknown outcome and then hears 429, usage-capped
  or 401 keeps the row `posting` (and its reservation): the earlier call may have created the
  post, so the next attempt must look for it first.
- A refund goes back to the month the reservation was taken in.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET
from tests.e2e.posting import due_now, job_of, one, quota_used, row_of
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker


def posts_used(conn: psycopg.Connection, month: str = "public.current_month()") -> float:
    return quota_used(conn, "posts", month=month)


def settings(stack: SandboxStack, dsn: str) -> Any:
    return stack.settings(dsn, poll_interval_s=0.3, reconcile_window_s=1.0)


@pytest.mark.parametrize("refusal", ["rate_limit", "usage_cap", "auth"])
async def test_a_carried_over_attempt_refused_by_x_keeps_posting_and_nothing_is_refunded(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str, refusal: str
) -> None:
    x = stack.x
    x.drop_after_create_next()  # attempt 1: X creates the post, the answer is lost
    content = "slower than the window"
    row_id = one(
        conn, "insert into public.scheduled_tweets (content) values (%s) returning id", content
    )["id"]
    async with running(Worker(settings(stack, dsn), kinds=["post_tweet"])):
        await wait_for(lambda: x.posts_created == 1, timeout=15, message="attempt 1 reaches X")
        (tweet,) = x.posted_tweets()
        tweet.visible_at = float("inf")  # X's timeline lags far behind
        if refusal == "rate_limit":
            x.exhaust_rate_limit(CREATE_TWEET, reset_in=600)
        elif refusal == "usage_cap":
            x.set_usage_cap(posts=1)
        else:
            x.fail_next(CREATE_TWEET, 1, status=401)
        await wait_for(
            lambda: job_of(conn, row_id)["status"] == "queued",
            timeout=15,
            message="attempt 1: outcome unknown",
        )
        due_now(admin_dsn, job_of(conn, row_id)["id"])
        # Attempt 2 finds nothing (the timeline lags), waits out the window, posts again:
        # X refuses it without creating anything.
        refused_with = 401 if refusal == "auth" else 429
        await wait_for(
            lambda: (
                x.request_count(CREATE_TWEET, status=refused_with) == 1
                and job_of(conn, row_id)["status"] == "queued"
            ),
            timeout=20,
            message="attempt 2 refused by X",
        )
        row = row_of(conn, row_id)
        assert (row["status"], row["post_started_at"] is not None) == ("posting", True)
        assert posts_used(conn) == 1  # the reservation stays with the row
        # The lag ends; the refusal is lifted; the job's time comes.
        tweet.visible_at = x.now()
        x.clear_faults()
        x.set_rate_limit(CREATE_TWEET, remaining=1000, reset_in=900)
        x.set_usage_cap(posts=None)
        due_now(admin_dsn, job_of(conn, row_id)["id"])
        await wait_for(
            lambda: row_of(conn, row_id)["status"] in ("posted", "failed"),
            timeout=20,
            message="settled",
        )
    row = row_of(conn, row_id)
    assert (row["status"], row["tweet_id"]) == ("posted", tweet.id)
    assert x.posts_created == 1 and posts_used(conn) == 1
    assert job_of(conn, row_id)["result"]["reconciled"] is True
    # Found on the timeline: never sent a third time, no duplicate refusal needed.
    assert x.request_count(CREATE_TWEET, status=403) == 0


async def test_after_a_duplicate_refusal_the_post_is_recorded_and_not_refunded(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str
) -> None:
    """The window was too short for X's lag: the retry posts again, X refuses it as a
    duplicate, and the post X holds (and billed) is found and counted."""
    x = stack.x
    x.drop_after_create_next()
    content = "already out there"
    row_id = one(
        conn, "insert into public.scheduled_tweets (content) values (%s) returning id", content
    )["id"]
    async with running(Worker(settings(stack, dsn), kinds=["post_tweet"])):
        await wait_for(lambda: x.posts_created == 1, timeout=15, message="attempt 1 reaches X")
        (tweet,) = x.posted_tweets()
        tweet.visible_at = x.now() + 4.0  # longer than the 1 s window
        await wait_for(
            lambda: job_of(conn, row_id)["status"] == "queued", timeout=15, message="unknown"
        )
        due_now(admin_dsn, job_of(conn, row_id)["id"])
        await wait_for(
            lambda: row_of(conn, row_id)["status"] in ("posted", "failed"),
            timeout=30,
            message="settled",
        )
    row = row_of(conn, row_id)
    assert (row["status"], row["tweet_id"]) == ("posted", tweet.id)
    assert x.request_count(CREATE_TWEET, status=403) >= 1  # refused as a duplicate on the way
    assert x.posts_created == 1 and posts_used(conn) == 1


async def test_a_refund_goes_back_to_the_month_of_its_reservation(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    """A post reserved last month, whose outcome was unknown, is refused by X (400) this month:
    last month's count gets the post back, this month's is untouched."""
    x = stack.x
    content = "reserved on the 31st at 23:59"
    row_id = one(
        conn, "insert into public.scheduled_tweets (content) values (%s) returning id", content
    )["id"]
    conn.execute(
        "update public.scheduled_tweets set status = 'posting',"
        " post_started_at = public.current_month() - interval '1 second' where id = %s",
        (row_id,),
    )
    conn.execute(
        "insert into public.quota_usage (month, resource, used)"
        " values (public.current_month() - interval '1 month', 'posts', 1)"
    )
    x.fail_next(CREATE_TWEET, 1, status=400)
    async with running(Worker(settings(stack, dsn), kinds=["post_tweet"])):
        await wait_for(
            lambda: row_of(conn, row_id)["status"] == "failed", timeout=20, message="refused"
        )
    assert "X refused the tweet" in row_of(conn, row_id)["error"]
    assert posts_used(conn, "public.current_month() - interval '1 month'") == 0
    assert posts_used(conn) == 0
    assert x.posted_tweets() == []
