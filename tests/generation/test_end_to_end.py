"""A topic row becomes a posted tweet with its image: the whole sandbox (OpenAI, Storage,
Realtime, X stand-ins), a Worker running every job kind, a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from sandbox.stack import SandboxStack
from tests.generation.helpers import jobs_for, running_worker, schedule, scheduled, set_config
from tests.waiting import wait_for

TEXT = "Ship the smallest change that teaches you something, then look at what it taught."
ALT = "A paper boat setting off on a calm blue river at dawn."
ALL_KINDS = ("generate_tweet", "post_tweet")


@pytest.fixture
async def stack(admin_dsn: str) -> AsyncIterator[SandboxStack]:
    async with SandboxStack(admin_dsn) as s:
        yield s


async def test_topic_row_is_generated_and_posted_with_its_image(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.openai.queue_chat({"text": TEXT, "alt_text": ALT, "image_prompt": "a paper boat"})
    async with running_worker(stack.settings(dsn), ALL_KINDS):
        row_id = schedule(conn, "shipping small changes", with_image=True)
        row = await wait_for(
            lambda: (r := scheduled(conn, row_id))["status"] == "posted" and r,
            timeout=20,
            message="posted row",
        )

    [tweet] = stack.x.posted_tweets()
    assert tweet.source_text == TEXT and row["tweet_id"] == tweet.id
    # X stores it with a t.co link to the image appended.
    assert tweet.text.startswith(TEXT + " https://t.co/") and tweet.urls[-1]["media_key"]
    # The image was drawn by OpenAI: X was told (made_with_ai, configs.generation.made_with_ai).
    assert tweet.made_with_ai is True
    # The image X received is the one in the bucket, with the alt text written with the tweet.
    [media_key] = tweet.media_keys
    [media] = [m for m in stack.x.media.values() if m.media_key == media_key]
    assert media.alt_text == ALT == row["alt_text"]
    async with httpx.AsyncClient() as http:
        stored = await http.get(row["image_url"])
    assert stored.status_code == 200
    assert media.size == len(stored.content)
    assert media.mime_type == stored.headers["content-type"]
    posted = conn.execute(
        "select content, image_url, alt_text, media_id from public.tweets where tweet_id = %s",
        (tweet.id,),
    ).fetchone()
    assert posted == (TEXT, row["image_url"], ALT, media.id)
    [generate] = jobs_for(conn, row_id, "generate_tweet")
    [post] = jobs_for(conn, row_id, "post_tweet")
    assert generate["status"] == post["status"] == "succeeded"
    # Every call is priced: the post and its alt text on X, the drafts and the image on OpenAI.
    priced = dict(
        conn.execute(
            "select endpoint || ':' || operation, estimated_cost_usd::float8 from public.api_usage"
        ).fetchall()
    )
    assert priced["tweets:post"] == pytest.approx(0.015)
    assert priced["media_metadata:media_metadata"] == pytest.approx(0.005)
    assert priced["openai:images:image"] > 0 and priced["openai:chat:text"] > 0


async def test_approval_end_to_end(stack: SandboxStack, conn: psycopg.Connection, dsn: str) -> None:
    set_config(conn, "generation", require_approval=True)
    stack.openai.queue_chat(TEXT, "Write the test first; the bug report writes itself.")
    async with running_worker(stack.settings(dsn), ALL_KINDS):
        approve_id = schedule(conn, "shipping", with_image=True)
        reject_id = schedule(conn, "testing", with_image=True)
        for row_id in (approve_id, reject_id):
            await wait_for(
                lambda row_id=row_id: scheduled(conn, row_id)["status"] == "awaiting_approval",
                timeout=15,
                message="awaiting approval",
            )
        assert stack.x.posted_tweets() == []

        conn.execute(
            "update public.scheduled_tweets set status = 'rejected' where id = %s", (reject_id,)
        )
        conn.execute(
            "update public.scheduled_tweets set status = 'approved' where id = %s", (approve_id,)
        )
        approved = await wait_for(
            lambda: (r := scheduled(conn, approve_id))["status"] == "posted" and r,
            timeout=15,
            message="approved row posted",
        )

    [tweet] = stack.x.posted_tweets()
    assert tweet.id == approved["tweet_id"] and tweet.source_text == approved["content"]
    assert len(tweet.media_keys) == 1
    rejected = scheduled(conn, reject_id)
    assert rejected["status"] == "rejected" and rejected["tweet_id"] is None
    assert jobs_for(conn, reject_id, "post_tweet") == []
