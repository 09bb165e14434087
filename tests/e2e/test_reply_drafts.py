"""Reply drafts end to end: a real Worker with its Realtime doorbell, real tweepy and openai
clients against the X and OpenAI stand-ins, the real CLI, a real Postgres.

A mention arrives on X → the poll ingests it → a draft is written within 5 s with the stand-in
LLM taking 1 s → `chirpbase replies approve` → one reply on X, under the mention, billed as a
summoned reply. An opt-out stops every later draft to its author, and cancels one in flight.
What the webhook path adds (the same mention pushed and polled, a reply that did not summon
the account) is in test_reply_drafts_webhook.py; a kill -9 while the approved reply is posted,
in test_reply_drafts_crash.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from typer.testing import CliRunner

from sandbox.openai_api import ChatRequest
from sandbox.stack import CREDENTIALS, SandboxStack
from sandbox.x_api.model import Tweet
from sandbox.x_api.state import XState
from tests.waiting import wait_for
from tests.workers import running
from worker.ops.cli import app
from worker.runtime.worker import Worker

KINDS = ["poll_mentions", "draft_reply", "post_tweet"]
pytestmark = pytest.mark.timeout(90)


def replier(request: ChatRequest) -> dict[str, str] | None:
    """Answers reply prompts about the post they quote (generation prompts get the default)."""
    lines = request.user.splitlines()
    if "Answer this post by" not in request.user:
        return None
    post = lines[lines.index(next(x for x in lines if x.startswith("Answer this post by"))) + 1]
    return {"text": f"Good question! Short answer on “{post[15:60].strip()}”: measure first."}


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params or None).fetchall()  # type: ignore[arg-type]


def enable(conn: psycopg.Connection, **values: Any) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'conversation'",
        (psycopg.types.json.Jsonb({"enabled": True, **values}),),
    )


def our_post(conn: psycopg.Connection, x: XState, text: str) -> Tweet:
    """A post of the account's, on X and in `tweets` (chirpbase posted it)."""
    ours = x.create_tweet(x.me.id, text)
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values (%s, %s, now())",
        (ours.id, ours.text),
    )
    return ours


def poll(conn: psycopg.Connection) -> int:
    return int(conn.execute("select public.enqueue_job('poll_mentions')").fetchone()[0])  # type: ignore[index]


async def cli(stack: SandboxStack, dsn: str, *args: str) -> tuple[int, str]:
    """`chirpbase <args>` in a thread (it runs its own event loop), with the worker's env."""
    env = {**stack.env(dsn), "COLUMNS": "200"}
    result = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--database-url", dsn], env=env
    )
    assert "Traceback" not in result.output, result.output
    for secret in CREDENTIALS.values():
        assert secret not in result.output
    return result.exit_code, result.output


@contextlib.asynccontextmanager
async def worker(stack: SandboxStack, dsn: str) -> AsyncIterator[Worker]:
    settings = stack.settings(dsn, doorbell_enabled=True, poll_interval_s=5.0)
    async with running(Worker(settings, kinds=KINDS)) as w:
        await wait_for(lambda: w.doorbell.database_subscribed, timeout=10, message="doorbell")
        yield w


@pytest.fixture
def world(stack: SandboxStack, conn: psycopg.Connection) -> SandboxStack:
    conn.execute("update public.x_account set user_id = %s where id = 1", (stack.x.me.id,))
    stack.openai.set_chat_responder(replier)
    return stack


async def test_a_mention_is_drafted_within_5s_then_approved_by_cli_and_replied_to_once(
    world: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    x = world.x
    enable(conn)
    world.openai.set_latency(chat=1.0)
    ours = our_post(conn, x, "SKIP LOCKED is a queue's best friend")
    alice = x.add_user("alice_dev")
    walt = x.add_user("walt_first")

    def draft_of(post_id: str) -> list[dict[str, Any]]:
        return rows(conn, "select * from public.reply_drafts where reply_id = %s", post_id)

    async with worker(world, dsn):
        # A worker's first draft also loads the OpenAI package (seconds on a busy machine,
        # once per process): a running worker has done that already.
        first = x.add_mention(walt.id, "@chirpbase_bot which autovacuum settings matter most?")
        poll(conn)
        await wait_for(lambda: draft_of(first.id), timeout=30, message="the first draft")
        mention = x.add_reply(alice.id, ours.id, "how do you keep the lease short?")
        started = time.monotonic()
        poll(conn)
        (draft,) = await wait_for(lambda: draft_of(mention.id), timeout=5, message="a draft")
        took = time.monotonic() - started
        assert 1.0 <= took < 5.0, took  # the LLM's second is in it
        assert draft["status"] == "awaiting_approval" and draft["reply_id"] == mention.id
        assert "how do you keep the lease" in draft["content"]
        assert not draft["content"].startswith("@")  # X puts the handle there itself
        assert draft["context"]["parent"] == {
            "id": ours.id,
            "text": ours.text,
            "author": None,
            "ours": True,
        }
        assert draft["expires_at"] > draft["created_at"]
        # The prompt carried the conversation: the account's post and the question.
        (prompt,) = [
            r for r in world.openai.requests_for("chat") if "keep the lease" in r.prompt_text
        ]
        assert ours.text in prompt.prompt_text and "how do you keep the lease" in prompt.prompt_text
        assert x.request_count("GET /2/tweets") == 0  # the account's post was known: no read

        code, out = await cli(world, dsn, "replies", "list")
        assert code == 0 and str(draft["id"]) in out and "@alice_dev" in out
        code, out = await cli(world, dsn, "replies", "approve", str(draft["id"]))
        assert code == 0, out
        assert f"approved reply draft {draft['id']}" in out

        def posted() -> list[dict[str, Any]]:
            return rows(conn, "select * from public.reply_drafts where status = 'posted'")

        (done,) = await wait_for(posted, timeout=10, message="the reply posted")
        code, again = await cli(world, dsn, "replies", "approve", str(draft["id"]))
        assert code == 0 and "already posted" in again

    replies = [t for t in x.posted_tweets() if t.referenced_tweets]
    assert len(replies) == 1
    (reply,) = replies
    assert reply.referenced_tweets == [{"type": "replied_to", "id": mention.id}]
    assert reply.conversation_id == ours.id and reply.in_reply_to_user_id == alice.id
    assert reply.text == f"@alice_dev {draft['content']}"  # X's handle before the text
    assert done["tweet_id"] == reply.id and done["posted_at"] is not None
    (post,) = rows(
        conn, "select * from public.scheduled_tweets where reply_draft_id = %s", done["id"]
    )
    assert (post["source"], post["in_reply_to_tweet_id"], post["status"]) == (
        "reply",
        mention.id,
        "posted",
    )
    assert [
        c.operation for c in x.billing.charges if c.operation.startswith(("post", "reply"))
    ] == ["reply_summoned"]  # X billed the summoned reply, and chirpbase priced it the same
    (priced,) = rows(
        conn, "select operation, estimated_cost_usd from public.api_usage where endpoint = 'tweets'"
    )
    assert priced["operation"] == "reply_summoned" and float(priced["estimated_cost_usd"]) == 0.01


async def test_an_opt_out_stops_every_later_draft_and_cancels_an_open_one(
    world: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    x = world.x
    enable(conn, per_author_daily_cap=10)
    bob = x.add_user("bob_builds")
    carol = x.add_user("carol_c")
    first = x.add_mention(bob.id, "@chirpbase_bot which index for a queue?")
    async with worker(world, dsn):
        poll(conn)
        (open_draft,) = await wait_for(
            lambda: rows(conn, "select * from public.reply_drafts"), timeout=10, message="a draft"
        )
        assert open_draft["reply_id"] == first.id
        x.add_mention(bob.id, "@chirpbase_bot STOP replying to me please")
        x.add_mention(carol.id, "@chirpbase_bot how do I stop a runaway query?")
        poll(conn)
        await wait_for(
            lambda: rows(conn, "select 1 from public.replies where author_id = %s", carol.id),
            timeout=10,
            message="the next poll",
        )
        opt_outs = {
            r["author_id"]: r["phrase"]
            for r in rows(conn, "select author_id, phrase from public.reply_opt_outs")
        }
        # Carol asked how to stop a query: the word is there, so she is opted out too. By
        # design: a missed opt-out breaks X's rule, a false one costs one conversation.
        assert opt_outs == {bob.id: "stop", carol.id: "stop"}
        (cancelled,) = rows(
            conn, "select * from public.reply_drafts where id = %s", open_draft["id"]
        )
        assert cancelled["status"] == "cancelled"
        assert cancelled["error"] == "the author opted out of replies"
        # Later posts from bob, however friendly, get no draft: no job is even queued.
        later = x.add_mention(bob.id, "@chirpbase_bot ok one more question, about vacuum")
        poll(conn)
        await wait_for(
            lambda: rows(conn, "select 1 from public.replies where reply_id = %s", later.id),
            timeout=10,
            message="the later mention",
        )
        jobs = rows(conn, "select payload from public.jobs where kind = 'draft_reply'")
        assert [j["payload"]["reply_id"] for j in jobs] == [first.id]
        code, out = await cli(world, dsn, "replies", "approve", str(open_draft["id"]))
        assert code == 2 and "cancelled is final" in out
    assert [t for t in x.posted_tweets() if t.referenced_tweets] == []
    assert len(rows(conn, "select * from public.reply_drafts")) == 1
