"""X as it is in late 2026, through a real Worker, real tweepy, the X stand-in and Postgres.

* Likes exist only on Enterprise: when X refuses one (403 client-forbidden), likes are paused
  with one alert and every like job behind it is skipped without reaching X.
* On self-serve access a reply goes only to a post that summoned the account: refused before any
  call (at the door, or by the worker), and X's own refusal ends the row cleanly too.
* HTTP 402 (credits or the spending limit) pauses posting with an alert and nothing lost; it
  resumes once X serves again.
* A spent 24-hour window makes the post wait for the 24-hour reset, not the 15-minute one.
* Every call is priced by operation: a post with a URL is $0.20 in api_usage and on X's bill.
* The dollar budget is a hard stop: the post waits, then goes out once the budget allows it.
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
from sandbox.x_api import CREATE_TWEET, LIKE, MENTIONS
from tests.waiting import wait_for
from tests.workers import running as run_worker
from tests.xaccess import enable_likes, set_access_tier
from worker.runtime.worker import Worker


def running(
    stack: SandboxStack, dsn: str, kinds: list[str]
) -> contextlib.AbstractAsyncContextManager[Worker]:
    return run_worker(Worker(stack.settings(dsn, poll_interval_s=0.5), kinds=kinds))


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()  # type: ignore[arg-type]


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any]:
    found = rows(conn, sql, *params)
    assert len(found) == 1, (sql, found)
    return found[0]


def schedule(conn: psycopg.Connection, content: str, **cols: Any) -> int:
    names = ", ".join(["content", *cols])
    values = ", ".join(["%(content)s", *(f"%({c})s" for c in cols)])
    row = conn.execute(
        f"insert into public.scheduled_tweets ({names}) values ({values}) returning id",
        {"content": content, **cols},
    ).fetchone()
    assert row is not None
    return int(row[0])


def scheduled(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    return one(conn, "select * from public.scheduled_tweets where id = %s", row_id)


def post_job(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    return one(
        conn,
        "select j.* from public.jobs j join public.scheduled_tweets s on s.job_id = j.id"
        " where s.id = %s",
        row_id,
    )


def open_alerts(conn: psycopg.Connection, kind: str | None = None) -> list[dict[str, Any]]:
    return rows(
        conn,
        "select * from public.alerts where resolved_at is null"
        " and (%s::text is null or kind = %s) order by id",
        kind,
        kind,
    )


def due_now(conn: psycopg.Connection, job_id: int) -> None:
    """The re-check time of a waiting job arrives (what the clock would do ten minutes on)."""
    conn.execute("update public.jobs set run_at = now() where id = %s", (job_id,))


# -- likes ----------------------------------------------------------------------------------------


async def test_50_replies_on_pay_per_use_make_one_like_attempt_and_one_alert(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    """The operator set Enterprise, X gives the app pay-per-use: the first like is refused with
    X's client-forbidden problem; the other 49 never reach X."""
    assert stack.x.access_tier == "pay_per_use"
    set_access_tier(conn, "enterprise")
    enable_likes(conn)
    ours = stack.x.create_tweet(stack.x.me.id, "a post worth replying to")
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values (%s, %s, now())",
        (ours.id, ours.text),
    )
    fans = [stack.x.add_user(f"fan_{i}") for i in range(50)]
    replies = [
        stack.x.add_reply(fan.id, ours.id, f"great point #{i}") for i, fan in enumerate(fans)
    ]

    async with running(stack, dsn, ["poll_mentions", "like_reply"]):
        conn.execute("select public.enqueue_job('poll_mentions')")
        likes = await wait_for(
            lambda: (
                len(found := rows(conn, "select * from public.jobs where kind = 'like_reply'"))
                == 50
                and all(j["status"] == "skipped" for j in found)
                and found
            ),
            timeout=30,
            message="50 like jobs, all skipped",
        )

    assert stack.x.request_count(LIKE) == 1
    assert stack.x.request_count(LIKE, status=403) == 1
    assert len(stack.x.like_requests()) == 0
    (alert,) = open_alerts(conn, "x_capability_refused")
    assert alert["occurrences"] == 1 and alert["details"]["tier"] == "enterprise"
    assert "X refused likes" in alert["message"] and "2026-04-20" in alert["message"]
    assert open_alerts(conn, "x_auth") == [] and open_alerts(conn, "job_dead") == []
    assert all(j["attempts"] <= 1 and j["result"]["capability"] == "likes" for j in likes)
    assert not rows(conn, "select 1 from public.replies where liked")
    assert len(rows(conn, "select 1 from public.replies")) == len(replies)
    # New replies make no like job any more (the trigger sees the pause), until the tier changes.
    stack.x.add_reply(fans[0].id, ours.id, "one more")
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values ('999', %s, 'x')",
        (fans[1].id,),
    )
    assert len(rows(conn, "select 1 from public.jobs where kind = 'like_reply'")) == 50


async def test_on_pay_per_use_no_like_is_attempted_at_all(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    enable_likes(conn)  # even when asked for
    alice = stack.x.add_user("alice")
    stack.x.add_mention(alice.id, "hello bot")
    async with running(stack, dsn, ["poll_mentions", "like_reply"]):
        job_id = conn.execute("select public.enqueue_job('poll_mentions')").fetchone()[0]  # type: ignore[index]
        await wait_for(
            lambda: (
                one(conn, "select status from public.jobs where id = %s", job_id)["status"]
                == "succeeded"
            ),
            message="the poll",
        )
    assert len(rows(conn, "select 1 from public.replies")) == 1
    assert rows(conn, "select 1 from public.jobs where kind = 'like_reply'") == []
    assert stack.x.request_count(LIKE) == 0 and open_alerts(conn) == []


# -- summoned replies -------------------------------------------------------------------------------


async def test_a_reply_to_a_post_that_did_not_summon_the_account_is_never_sent(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stranger = stack.x.add_user("stranger")
    take = stack.x.add_post(stranger.id, "a hot take about queues")
    # At the door: refused with the reason, nothing queued.
    with pytest.raises(psycopg.errors.CheckViolation, match="summoned the account"):
        schedule(conn, "well, actually", in_reply_to_tweet_id=take.id)
    # A row accepted while the config said Enterprise, posted after it went back to pay-per-use:
    # the worker refuses it before any call.
    set_access_tier(conn, "enterprise")
    row_id = schedule(conn, "well, actually", in_reply_to_tweet_id=take.id)
    set_access_tier(conn, "pay_per_use")
    before = stack.x.request_count()
    async with running(stack, dsn, ["post_tweet"]):
        job = await wait_for(
            lambda: (j := post_job(conn, row_id))["status"] == "skipped" and j,
            message="the reply's job skipped",
        )
    assert stack.x.request_count() == before == 0  # not one request to X
    row = scheduled(conn, row_id)
    assert row["status"] == "failed" and "summoned the account" in row["error"]
    assert job["result"]["capability"] == "unsummoned_replies"
    assert stack.x.posted_tweets() == []


async def test_x_refuses_a_reply_chirpbase_thought_summoned_and_the_row_ends_cleanly(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stranger = stack.x.add_user("stranger")
    take = stack.x.add_post(stranger.id, "no mention of anyone")
    # Someone put the post in replies by hand: chirpbase believes it summoned the account.
    conn.execute(
        "insert into public.replies (reply_id, author_id, content, source)"
        " values (%s, %s, %s, 'manual')",
        (take.id, stranger.id, take.text),
    )
    row_id = schedule(conn, "thanks for the mention", in_reply_to_tweet_id=take.id)
    async with running(stack, dsn, ["post_tweet"]):
        await wait_for(
            lambda: post_job(conn, row_id)["status"] == "skipped", message="the job skipped"
        )
    assert stack.x.request_count(CREATE_TWEET, status=403) == 1
    row = scheduled(conn, row_id)
    assert row["status"] == "failed" and "did not summon the account" in row["error"]
    assert open_alerts(conn, "x_auth") == []
    assert one(conn, "select used from public.quota_usage where resource = 'posts'")["used"] == 0


async def test_a_summoned_reply_is_posted_and_priced_as_one(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    alice = stack.x.add_user("alice")
    mention = stack.x.add_mention(alice.id, "@chirpbase_bot how do leases work?")
    async with running(stack, dsn, ["poll_mentions", "post_tweet"]):
        poll = conn.execute("select public.enqueue_job('poll_mentions')").fetchone()[0]  # type: ignore[index]
        await wait_for(
            lambda: (
                one(conn, "select status from public.jobs where id = %s", poll)["status"]
                == "succeeded"
            ),
            message="the poll",
        )
        row_id = schedule(conn, "they expire unless renewed", in_reply_to_tweet_id=mention.id)
        await wait_for(lambda: scheduled(conn, row_id)["status"] == "posted", message="posted")
    [reply] = stack.x.posted_tweets()
    assert reply.referenced_tweets == [{"type": "replied_to", "id": mention.id}]
    usage = one(conn, "select * from public.api_usage where endpoint = 'tweets'")
    assert usage["operation"] == "reply_summoned"
    assert float(usage["estimated_cost_usd"]) == pytest.approx(0.010)
    assert stack.x.billing.by_operation()["reply_summoned"] == pytest.approx(0.010)


# -- money ---------------------------------------------------------------------------------------------


async def test_a_post_with_a_url_is_priced_020_like_x_bills_it(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    plain = schedule(conn, "plain words only")
    linked = schedule(conn, "the write-up: https://example.com/chirpbase")
    async with running(stack, dsn, ["post_tweet"]):
        for row_id in (plain, linked):
            await wait_for(
                lambda r=row_id: scheduled(conn, r)["status"] == "posted", message="post"
            )
    priced = {
        r["operation"]: float(r["estimated_cost_usd"])
        for r in rows(conn, "select * from public.api_usage where endpoint = 'tweets'")
    }
    assert priced == {"post": pytest.approx(0.015), "post_with_url": pytest.approx(0.20)}
    assert post_job(conn, linked)["result"]["cost_usd"] == pytest.approx(0.20)
    assert stack.x.billing.by_operation() == {
        "post": pytest.approx(0.015),
        "post_with_url": pytest.approx(0.20),
    }
    spend = one(conn, "select used::float8 from public.quota_usage where resource = 'spend_usd'")
    assert spend["used"] == pytest.approx(0.215)  # the budget holds exactly what was billed


async def test_402_pauses_posting_and_it_resumes_with_nothing_lost(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.billing.credits_usd = 0.0  # out of credits
    row_id = schedule(conn, "written while the credits ran out")
    async with running(stack, dsn, ["post_tweet"]):
        job = await wait_for(
            lambda: (j := post_job(conn, row_id))["last_error"] and j,
            message="the post refused with 402 and waiting",
        )
        assert job["status"] == "queued" and job["attempts"] == 0
        assert job["run_at"] > datetime.now(UTC) + timedelta(minutes=5)  # re-checked later
        assert "credits" in job["last_error"]
        row = scheduled(conn, row_id)
        assert row["status"] == "pending" and row["tweet_id"] is None
        (alert,) = open_alerts(conn, "x_credits_exhausted")
        assert "402" in alert["message"]
        assert stack.x.request_count(CREATE_TWEET, status=402) == 1
        assert (
            one(conn, "select used from public.quota_usage where resource = 'posts'")["used"] == 0
        )

        stack.x.billing.add_credits(5.0)  # a person adds credits
        due_now(conn, job["id"])
        await wait_for(lambda: scheduled(conn, row_id)["status"] == "posted", message="posted")
        await wait_for(lambda: not open_alerts(conn, "x_credits_exhausted"), message="resolved")
    assert [t.text for t in stack.x.posted_tweets()] == ["written while the credits ran out"]
    assert post_job(conn, row_id)["attempts"] == 1
    assert stack.x.billing.credits_usd == pytest.approx(5.0 - 0.015)


async def test_a_spent_24_hour_window_waits_for_its_own_reset(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    """X's app-wide 10,000 posts a day are spent: X answers 429 although the 15-minute window
    has calls left, and the job waits for the 24-hour reset."""
    day = stack.x.day_limits.set(CREATE_TWEET, remaining=0, reset_in=3 * 3600)
    fifteen = stack.x.peek_rate_limit(CREATE_TWEET)
    assert fifteen.remaining > 0 and day.window.reset_at > fifteen.reset_at
    row_id = schedule(conn, "the day's posts are spent")
    async with running(stack, dsn, ["post_tweet"]):
        job = await wait_for(
            lambda: (j := post_job(conn, row_id))["last_error"] and j, message="waiting"
        )
    assert "24-hour limit" in job["last_error"]
    reset = datetime.fromtimestamp(int(day.window.reset_at), UTC)
    assert reset <= job["run_at"] <= reset + timedelta(seconds=5)
    assert job["attempts"] == 0 and scheduled(conn, row_id)["status"] == "pending"
    assert stack.x.request_count(CREATE_TWEET, status=429) == 1


async def test_the_budget_stops_posting_and_the_post_waits_for_room(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"monthly_budget_usd": 0.01}),),
    )
    row_id = schedule(conn, "a post the budget cannot cover")  # $0.015 > $0.01
    async with running(stack, dsn, ["post_tweet"]):
        job = await wait_for(
            lambda: (j := post_job(conn, row_id))["last_error"] and j, message="waiting"
        )
        assert "monthly budget" in job["last_error"] and job["status"] == "queued"
        assert stack.x.request_count(CREATE_TWEET) == 0
        assert scheduled(conn, row_id)["status"] == "pending"
        (cap,) = open_alerts(conn, "quota_cap_reached")
        assert cap["dedupe_key"] == "quota_cap:spend_usd"

        conn.execute(
            "update public.configs set value = value || %s where key = 'quotas'",
            (Jsonb({"monthly_budget_usd": 1.0}),),
        )
        due_now(conn, job["id"])
        await wait_for(lambda: scheduled(conn, row_id)["status"] == "posted", message="posted")


async def test_a_poll_asks_for_no_more_posts_than_the_read_cap_leaves(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"monthly_read_cap": 40}),),
    )
    conn.execute(
        "insert into public.quota_usage (month, resource, used)"
        " values (public.current_month(), 'reads', 3)"
    )
    fan = stack.x.add_user("fan")
    for i in range(60):
        stack.x.add_mention(fan.id, f"@chirpbase_bot ping {i}")
    async with running(stack, dsn, ["poll_mentions"]):
        job_id = conn.execute("select public.enqueue_job('poll_mentions')").fetchone()[0]  # type: ignore[index]
        job = await wait_for(
            lambda: (
                (j := one(conn, "select * from public.jobs where id = %s", job_id))["status"]
                == "succeeded"
                and j
            ),
            message="the poll",
        )
    # 500 reads wanted, 37 left under the cap: one page of 37, the rest for next month.
    assert job["result"]["asked"] == 37 and job["result"]["fetched"] == 37
    assert stack.x.request_count(MENTIONS) == 1 and stack.x.posts_read == 37
    used = one(conn, "select used from public.quota_usage where resource = 'reads'")["used"]
    assert used == 40
