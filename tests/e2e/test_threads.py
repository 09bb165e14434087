"""Threads end to end through a real worker, tweepy and the X stand-in (no crash: see
test_thread_crash.py for kill -9).

A thread answering a mention: part 1 is a summoned reply (billed at "Post: Create (summoned)"),
the parts after it answer the account's own posts (allowed on every tier, billed as plain posts;
x-api/getting-started/pricing.mdx), an image rides on part 2, and the chain is exactly the
order given. A part X refuses stops the thread with the reason, and nothing after it is sent.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET
from tests.e2e.test_x_post import png
from tests.waiting import wait_for
from tests.workers import running as run_worker
from worker.clients.storage import ImageStore
from worker.content.images import fit_for_x
from worker.runtime.worker import Worker


def running(
    stack: SandboxStack, dsn: str, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[Worker]:
    settings = stack.settings(dsn, poll_interval_s=0.3, **overrides)
    return run_worker(Worker(settings, kinds=["post_tweet"]))


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None, sql
    return row


def settled(conn: psycopg.Connection, thread_id: int) -> bool:
    status = one(conn, "select status from public.scheduled_tweets where id = %s", thread_id)
    return status["status"] in ("posted", "failed", "cancelled")


async def test_a_thread_answering_a_mention_with_an_image_on_part_two(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.add_user("ada")
    mention = stack.x.add_mention("ada", "@chirpbase_bot how do advisory locks work?")
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values (%s, %s, %s)",
        (mention.id, mention.author_id, mention.text),
    )
    store = ImageStore.from_settings(stack.settings(dsn))
    fitted = fit_for_x(png())
    try:
        url = await store.upload_image(fitted)
    finally:
        await store.aclose()
    texts = [
        "Advisory locks, a thread 🧵",
        "They are keyed by numbers you choose.",
        "Session or transaction scoped: pick one.",
    ]
    with conn.transaction():  # the image is on part 2 before anything runs
        thread_id = one(
            conn,
            "insert into public.scheduled_tweets (thread, in_reply_to_tweet_id) values (%s, %s)"
            " returning id",
            texts,
            mention.id,
        )["id"]
        conn.execute(
            "update public.scheduled_tweets set image_path = %s, image_url = %s, alt_text = %s"
            " where thread_of = %s and thread_position = 2",
            (fitted.filename, url, "A lock diagram", thread_id),
        )

    async with running(stack, dsn):
        await wait_for(lambda: settled(conn, thread_id), timeout=30, message="thread posted")

    thread = one(conn, "select * from public.scheduled_tweets where id = %s", thread_id)
    assert thread["status"] == "posted", thread["error"]
    mine = sorted(
        (t for t in stack.x.posted_tweets() if t.author_id == stack.x.me.id),
        key=lambda t: int(t.id),
    )
    assert len(mine) == 3
    assert mine[0].referenced_tweets == [{"type": "replied_to", "id": mention.id}]
    assert mine[1].referenced_tweets == [{"type": "replied_to", "id": mine[0].id}]
    assert mine[2].referenced_tweets == [{"type": "replied_to", "id": mine[1].id}]
    assert {t.conversation_id for t in mine} == {mention.conversation_id}
    assert [bool(t.media_keys) for t in mine] == [False, True, False]
    assert thread["thread_tweet_ids"] == [t.id for t in mine]
    assert thread["tweet_id"] == mine[0].id

    billed = stack.x.billing.by_operation()
    assert billed["reply_summoned"] == 0.010  # part 1 answers the mention
    assert round(billed["post"], 3) == 0.030  # parts 2-3 answer the account's own posts
    recorded = {
        r["operation"]: r["posts"]
        for r in conn.execute(
            "select operation, sum(posts) as posts from public.api_usage"
            " where endpoint = 'tweets' group by operation"
        ).fetchall()
        for r in [{"operation": r[0], "posts": r[1]}]
    }
    assert recorded == {"reply_summoned": 1, "post": 2}


async def test_a_part_x_refuses_stops_the_thread(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    # Part 2 repeats a tweet the account already has: X refuses it as a duplicate.
    week_ago = datetime.now(UTC) - timedelta(days=7)
    stack.x.create_tweet(stack.x.me.id, "Posted last week already", created_at=week_ago)
    thread_id = one(
        conn,
        "insert into public.scheduled_tweets (thread) values (%s) returning id",
        ["A fresh start", "Posted last week already", "Never sent"],
    )["id"]
    # "Not posted" is concluded once X's timeline has had time to show the post (a short
    # consistency window here; 60 s by default).
    async with running(stack, dsn, reconcile_window_s=1.0):
        await wait_for(lambda: settled(conn, thread_id), timeout=30, message="thread settled")

    thread = one(conn, "select * from public.scheduled_tweets where id = %s", thread_id)
    assert thread["status"] == "failed"
    assert thread["error"].startswith("part 2 of 3 failed: X refused the text as a duplicate")
    assert thread["error"].endswith("1 of 3 posted")
    states = conn.execute(
        "select status from public.scheduled_tweets where thread_of = %s order by thread_position",
        (thread_id,),
    ).fetchall()
    assert states == [("posted",), ("failed",), ("cancelled",)]
    assert "Never sent" not in [t.source_text for t in stack.x.posted_tweets()]
    # Refused once; the retry looked (the window had passed), found nothing, and stopped there
    # instead of asking X again and again.
    assert stack.x.request_count(CREATE_TWEET, status=403) == 1
    assert one(conn, "select used from public.quota_usage where resource = 'posts'")["used"] == 1


async def test_a_generated_thread_with_an_image_on_part_one(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    """A topic with thread_parts: each part written and checked as a tweet is, in order, the
    image (drawn by OpenAI, so made_with_ai) on part 1 only; then posted as a chain."""
    texts = ["Advisory locks, a short thread.", "Keys are numbers you pick.", "Release them."]
    for text in texts:
        stack.openai.queue_chat({"text": text, "alt_text": "A padlock", "image_prompt": "a lock"})
    thread_id = one(
        conn,
        "insert into public.scheduled_tweets (topic, thread_parts, with_image)"
        " values ('advisory locks', 3, true) returning id",
    )["id"]
    worker = Worker(
        stack.settings(dsn, poll_interval_s=0.3), kinds=["generate_tweet", "post_tweet"]
    )
    async with run_worker(worker):
        await wait_for(lambda: settled(conn, thread_id), timeout=40, message="thread posted")

    thread = one(conn, "select * from public.scheduled_tweets where id = %s", thread_id)
    assert thread["status"] == "posted", thread["error"]
    assert thread["thread"] == texts
    tweets = sorted(stack.x.posted_tweets(), key=lambda t: int(t.id))
    assert [t.source_text for t in tweets] == texts  # as sent (X appends the media link)
    assert [bool(t.media_keys) for t in tweets] == [True, False, False]
    assert tweets[0].made_with_ai is True
    assert tweets[1].referenced_tweets == [{"type": "replied_to", "id": tweets[0].id}]
    assert tweets[2].referenced_tweets == [{"type": "replied_to", "id": tweets[1].id}]
    assert thread["thread_tweet_ids"] == [t.id for t in tweets]
    prompts = [r.prompt_text for r in stack.openai.requests_for("chat")]
    assert "post 2 of a 3-post thread" in prompts[1] and texts[0] in prompts[1]


async def test_a_generated_part_that_repeats_an_earlier_one_is_written_again(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    """X refuses a duplicate post, and a thread that repeats itself reads badly: part 2's first
    draft repeats part 1, is rejected by the similarity check, and the model is asked again with
    the reason."""
    first = "Vacuum, a thread: why dead tuples pile up in Postgres."
    for text in (first, first, "Autovacuum runs by itself; tune its thresholds."):
        stack.openai.queue_chat({"text": text, "alt_text": "", "image_prompt": ""})
    thread_id = one(
        conn,
        "insert into public.scheduled_tweets (topic, thread_parts) values ('vacuum', 2) returning id",
    )["id"]
    worker = Worker(
        stack.settings(dsn, poll_interval_s=0.3), kinds=["generate_tweet", "post_tweet"]
    )
    async with run_worker(worker):
        await wait_for(lambda: settled(conn, thread_id), timeout=40, message="thread posted")
    thread = one(conn, "select * from public.scheduled_tweets where id = %s", thread_id)
    assert thread["status"] == "posted", thread["error"]
    assert thread["thread"] == [first, "Autovacuum runs by itself; tune its thresholds."]
    prompts = [r.prompt_text for r in stack.openai.requests_for("chat")]
    assert len(prompts) == 3
    assert "too close to a recent tweet" in prompts[2]
