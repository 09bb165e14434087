"""kill -9 of the worker posting an approved reply draft, between X's answer and the database.

The reply draft is recorded and approved through SQL (as `chirpbase replies approve` does); a
real worker process (`chirpbase worker --kinds post_tweet`) posts it; the X stand-in creates
the reply, with the answered person's handle put in front of its text, and holds the answer; the
process is killed there. A restarted worker reconciles: it recognises the reply on the account's
timeline although its text is not what was sent, records it, and the draft is `posted`: one
reply on X, under the mention, and X was never asked again.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, USER_TWEETS
from tests.e2e.test_reply_drafts import enable
from tests.e2e.test_x_crash import one, reap_now, worker_process
from tests.waiting import wait_for

TEXT = "Short answer: a partial index on the queued rows keeps the claim fast."


@pytest.mark.timeout(120)
async def test_kill_9_while_posting_an_approved_reply_still_ends_with_one_reply(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str, tmp_path: Path
) -> None:
    x = stack.x
    conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    enable(conn)
    erin = x.add_user("erin_ops")
    mention = x.add_mention(erin.id, "@chirpbase_bot how do you keep the claim fast?")
    conn.execute(
        "insert into public.replies (reply_id, author_id, author_username, content, created_at,"
        " conversation_id, mentions_account, lang, source)"
        " values (%s, %s, %s, %s, %s, %s, true, 'en', 'webhook')",
        (mention.id, erin.id, erin.username, mention.text, mention.created_at, mention.id),
    )
    draft = one(
        conn, "select * from public.record_reply_draft(%s, %s)", mention.id, TEXT
    )  # what draft_reply stores once it has the text
    assert draft["refusal"] is None and draft["status"] == "awaiting_approval"
    x.drop_after_create_next(mode="hang")  # create the reply, then hold the answer
    approved = one(conn, "select * from public.approve_reply_draft(%s)", draft["draft_id"])
    row_id = approved["scheduled_tweet_id"]
    job_id = one(conn, "select job_id from public.scheduled_tweets where id = %s", row_id)["job_id"]

    first_log = tmp_path / "worker-1.log"
    with worker_process(stack, dsn, "reply-crash-1", first_log) as proc:
        await wait_for(
            lambda: x.posted_tweets() or proc.poll() is not None,
            timeout=30,
            message="the first worker to create the reply on X",
        )
        assert proc.poll() is None, first_log.read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    (reply,) = x.posted_tweets()
    assert reply.text == f"@erin_ops {TEXT}"  # not the text chirpbase sent
    row = one(conn, "select status, tweet_id from public.scheduled_tweets where id = %s", row_id)
    assert row == {"status": "posting", "tweet_id": None}
    assert one(conn, "select status from public.reply_drafts where id = %s", draft["draft_id"]) == {
        "status": "approved"
    }

    reap_now(conn, admin_dsn, job_id)

    second_log = tmp_path / "worker-2.log"
    with worker_process(stack, dsn, "reply-crash-2", second_log) as proc:
        await wait_for(
            lambda: (
                conn.execute(
                    "select 1 from public.reply_drafts where id = %s and status = 'posted'",
                    (draft["draft_id"],),
                ).fetchone()
                or proc.poll() is not None
            ),
            timeout=45,
            message="the restarted worker to record the reply",
        )
        assert proc.poll() is None, second_log.read_text()[-3000:]

    assert x.posted_tweets() == [reply] and x.posts_created == 1
    assert x.request_count(CREATE_TWEET) == 0  # never asked again (the one call is still held)
    assert x.request_count(USER_TWEETS) >= 1
    assert reply.referenced_tweets == [{"type": "replied_to", "id": mention.id}]
    done = one(conn, "select * from public.reply_drafts where id = %s", draft["draft_id"])
    assert (done["status"], done["tweet_id"]) == ("posted", reply.id)
    job = one(conn, "select status, attempts, result from public.jobs where id = %s", job_id)
    assert (job["status"], job["attempts"], job["result"]["reconciled"]) == ("succeeded", 2, True)
