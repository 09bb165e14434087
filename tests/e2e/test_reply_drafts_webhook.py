"""Reply drafts when mentions arrive both ways: pushed by X to the x-webhook edge function
(served by Deno against the test database) and polled by the worker.

The same mention delivered by webhook and found by the poll is one `replies` row, one
`draft_reply` job and one draft; a reply to the account's post that left the account's handle
out reaches the database (X delivers every reply to the account's posts) but did not summon it,
so it gets no draft, and X would refuse a reply to it anyway.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from typer.testing import CliRunner

from sandbox.stack import CREDENTIALS, SandboxStack
from tests.e2e.test_reply_drafts import enable, our_post, poll, replier, rows, worker
from tests.waiting import wait_for
from tests.webhook_server import serving_x_webhook
from worker.ops.cli import app

PUBLIC = "https://abcdefghijklmnop.supabase.co"
URL = f"{PUBLIC}/functions/v1/x-webhook"


@pytest.mark.timeout(300)  # the first Deno run may fetch its npm packages
async def test_pushed_and_polled_mention_gives_one_draft_and_an_unsummoning_reply_none(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    x = stack.x
    stack.openai.set_chat_responder(replier)
    enable(conn)
    async with serving_x_webhook(secret=CREDENTIALS["x_api_secret"], db_url=dsn) as served:
        x.activity.route(PUBLIC, served.url)
        env = {**stack.env(dsn), "COLUMNS": "200"}
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["webhook", "register", "--url", URL, "--database-url", dsn],
            env=env,
        )  # fmt: skip
        assert result.exit_code == 0, result.output

        ours = our_post(conn, x, "Partial indexes keep the claim query small.")
        fan = x.add_user("index_fan")
        mention = x.add_reply(fan.id, ours.id, "does that hold with a million finished jobs?")
        shy = x.add_user("shy_one")
        unsummoning = x.add_reply_without_handle(shy.id, ours.id, "agreed, nice post")
        assert x.me.id not in unsummoning.mentioned_user_ids
        await wait_for(
            lambda: len(rows(conn, "select 1 from public.replies")) == 2,
            timeout=15,
            message="both posts pushed",
        )
        await x.activity.drain()

        async with worker(stack, dsn):
            (draft,) = await wait_for(
                lambda: rows(conn, "select * from public.reply_drafts"), timeout=10, message="draft"
            )
            job = poll(conn)  # the same posts, polled
            await wait_for(
                lambda: rows(
                    conn, "select 1 from public.jobs where id = %s and status = 'succeeded'", job
                ),
                timeout=10,
                message="the poll",
            )
            (polled,) = rows(conn, "select result from public.jobs where id = %s", job)
            assert polled["result"]["fetched"] == 1 and polled["result"]["inserted"] == 0

    stored = {r["reply_id"]: r for r in rows(conn, "select * from public.replies")}
    assert stored[mention.id]["source"] == "webhook" and stored[mention.id]["mentions_account"]
    assert stored[unsummoning.id]["mentions_account"] is False  # kept: it replies to us
    assert draft["reply_id"] == mention.id
    assert rows(conn, "select reply_id from public.reply_drafts") == [{"reply_id": mention.id}]
    jobs = rows(conn, "select payload, dedupe_key from public.jobs where kind = 'draft_reply'")
    assert jobs == [
        {"payload": {"reply_id": mention.id}, "dedupe_key": f"draft_reply:{mention.id}"}
    ]
    why = conn.execute("select public.reply_draft_refusal(%s)", (unsummoning.id,)).fetchone()
    assert why is not None and why[0].startswith("the post did not summon the account")
    # X agrees: a reply to it is refused on self-serve access.
    assert not x.summoned_by(unsummoning)
    assert len(stack.openai.requests_for("chat")) == 1  # one draft written, once
    assert CREDENTIALS["x_api_secret"] not in served.output
