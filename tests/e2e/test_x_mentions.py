"""Mentions and likes through a real Worker, real tweepy, the X stand-in and a real Postgres.

A reply that appears on X is ingested once and liked once however often mentions are polled;
the since_id cursor lives in the database and only moves forward; with like_mentions off only
replies to our own tweets are liked, while every mention is stored.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import LIKE, MENTIONS, USERS_LOOKUP
from tests.waiting import wait_for
from tests.workers import running as run_worker
from tests.xaccess import use_enterprise
from worker.runtime.worker import Worker

KINDS = ["poll_mentions", "like_reply"]


def running(stack: SandboxStack, dsn: str) -> contextlib.AbstractAsyncContextManager[Worker]:
    """A worker for these tests' kinds against the stack."""
    return run_worker(Worker(stack.settings(dsn, poll_interval_s=0.5), kinds=KINDS))


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()  # type: ignore[arg-type]


def enqueue_poll(conn: psycopg.Connection) -> int:
    row = conn.execute("select public.enqueue_job('poll_mentions')").fetchone()
    assert row is not None
    return int(row[0])


async def succeeded(conn: psycopg.Connection, *job_ids: int) -> list[dict[str, Any]]:
    def done() -> bool:
        row = conn.execute(
            "select count(*) from public.jobs where id = any(%s) and status = 'succeeded'",
            (list(job_ids),),
        ).fetchone()
        return row is not None and row[0] == len(job_ids)

    await wait_for(done, timeout=10, message=f"jobs {job_ids} to succeed")
    return rows(conn, "select * from public.jobs where id = any(%s) order by id", list(job_ids))


def since_id(conn: psycopg.Connection) -> str | None:
    row = conn.execute("select mentions_since_id from public.x_account").fetchone()
    assert row is not None
    return row[0]


async def test_reply_is_ingested_once_and_liked_once_even_when_polled_twice(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    use_enterprise(stack.x, conn)  # likes exist only on Enterprise access
    conn.execute(
        "update public.configs set value = value || '{\"like_mentions\": false}'"
        " where key = 'engagement'"
    )
    ours = stack.x.create_tweet(stack.x.me.id, "SKIP LOCKED is a queue's best friend")
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values (%s, %s, now())",
        (ours.id, ours.text),
    )
    alice = stack.x.add_user("alice_dev", name="Alice")
    bob = stack.x.add_user("bob_builds", name="Bob")
    reply = stack.x.add_reply(alice.id, ours.id, "love this &amp; the chart")
    mention = stack.x.add_mention(bob.id, "hey @chirpbase_bot what about advisory locks?")
    long_text = "@chirpbase_bot " + "queues on Postgres with leases and heartbeats. " * 8
    long_post = stack.x.add_mention(bob.id, long_text)
    assert long_post.note_text == long_text and long_post.text != long_text  # X truncates

    assert since_id(conn) is None
    async with running(stack, dsn):
        first, second = enqueue_poll(conn), enqueue_poll(conn)  # polled twice
        polls = await succeeded(conn, first, second)
        await wait_for(
            lambda: rows(conn, "select 1 from public.replies where liked"),
            timeout=10,
            message="the reply liked",
        )
        # Anything else would have been enqueued by now, together with the reply's like job.
        likes = rows(conn, "select * from public.jobs where kind = 'like_reply'")
        await succeeded(conn, *[j["id"] for j in likes])

        assert [p["result"]["inserted"] for p in polls] == [3, 0]
        assert [p["result"]["fetched"] for p in polls] == [3, 0]  # the second asked since_id
        newest = max((reply.id, mention.id, long_post.id), key=int)
        assert since_id(conn) == newest

        stored = {
            r["reply_id"]: r
            for r in rows(conn, "select * from public.replies order by reply_id::numeric")
        }
        assert set(stored) == {reply.id, mention.id, long_post.id}  # each once
        assert stored[reply.id]["original_tweet_id"] == ours.id
        assert stored[reply.id]["content"] == reply.text
        # No author expansion (a User: Read for every author of every poll): the authors nobody
        # had named were looked up once, together.
        assert stored[reply.id]["author_id"] == alice.id
        assert stored[reply.id]["author_username"] == "alice_dev"
        assert stored[mention.id]["author_username"] == "bob_builds"
        assert stack.x.request_count(USERS_LOOKUP) == 1
        assert polls[0]["result"]["authors_looked_up"] == 2
        assert stored[reply.id]["conversation_id"] == ours.id
        assert stored[mention.id]["original_tweet_id"] is None
        assert stored[long_post.id]["content"] == long_text  # the note's full text
        assert {r["source"] for r in stored.values()} == {"poll"}
        # like_mentions is off: the reply to our tweet is liked, the plain mentions are not.
        assert {k: r["liked"] for k, r in stored.items()} == {
            reply.id: True,
            mention.id: False,
            long_post.id: False,
        }
        assert [j["payload"]["reply_id"] for j in likes] == [reply.id]
        assert len(stack.x.like_requests()) == 1
        assert len(stack.x.like_requests(reply.id)) == 1
        assert stack.x.get_tweet(reply.id).metrics["like_count"] == 1  # type: ignore[union-attr]

        # A later reply: the cursor advances, only the new post comes back, and it is liked.
        later = stack.x.add_reply(bob.id, ours.id, "late to the party")
        third = enqueue_poll(conn)
        (poll,) = await succeeded(conn, third)
        assert (poll["result"]["fetched"], poll["result"]["inserted"]) == (1, 1)
        assert since_id(conn) == later.id and int(later.id) > int(newest)
        await wait_for(
            lambda: stack.x.like_requests(later.id), timeout=10, message="the later reply liked"
        )

    assert stack.x.request_count(MENTIONS) == 3
    assert stack.x.request_count(LIKE) == 2
    # bob was named already: the later reply got his username without asking X again.
    assert stack.x.request_count(USERS_LOOKUP) == 1
    later_row = rows(
        conn, "select author_username from public.replies where reply_id = %s", later.id
    )
    assert later_row == [{"author_username": "bob_builds"}]
    assert len(rows(conn, "select 1 from public.replies")) == 4
    usage = rows(conn, "select * from public.api_usage where endpoint = 'mentions'")
    assert usage[0]["calls"] == 3 and usage[0]["reads"] == 4


async def test_a_burst_larger_than_one_poll_is_backfilled_not_skipped(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    fan = stack.x.add_user("fan_club")
    first = stack.x.add_mention(fan.id, "@chirpbase_bot first!")
    async with running(stack, dsn):
        await succeeded(conn, enqueue_poll(conn))
        assert since_id(conn) == first.id

        burst = [stack.x.add_mention(fan.id, f"@chirpbase_bot burst {i}") for i in range(12)]
        row = conn.execute(
            "select public.enqueue_job('poll_mentions', '{\"max_results\": 5, \"max_pages\": 2}')"
        ).fetchone()
        assert row is not None
        (poll,) = await succeeded(conn, row[0])
        # One poll reads at most 2 pages of 5 (X may serve them short): the newest ones. The
        # cursor moves to the newest anyway...
        fetched = poll["result"]["fetched"]
        assert 0 < fetched <= 10 and poll["result"]["inserted"] == fetched
        assert since_id(conn) == burst[-1].id
        # ...and the older ones, above the old cursor, go to backfill jobs, one after the other.
        inserted = fetched
        job_id = poll["result"].get("backfill_job")
        while job_id is not None:
            (backfill,) = await succeeded(conn, job_id)
            assert backfill["payload"]["since_id"] == first.id
            inserted += backfill["result"]["inserted"]
            assert since_id(conn) == burst[-1].id  # a backfill never moves the cursor
            job_id = backfill["result"].get("backfill_job")
        assert inserted == 12

    stored = {r["reply_id"] for r in rows(conn, "select reply_id from public.replies")}
    assert stored == {first.id, *(t.id for t in burst)}
