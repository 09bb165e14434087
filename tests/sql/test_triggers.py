"""Triggers: scheduled_tweets and replies create, move and cancel jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import Jsonb, claim, job, scalar, set_config


def _schedule(conn: psycopg.Connection, **cols: Any) -> dict[str, Any]:
    names = ", ".join(cols)
    values = ", ".join(f"%({c})s" for c in cols)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"insert into public.scheduled_tweets ({names}) values ({values}) returning *", cols
        )
        row = cur.fetchone()
    assert row is not None
    return row


def _row(conn: psycopg.Connection, tweet_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from public.scheduled_tweets where id = %s", (tweet_id,))
        row = cur.fetchone()
    assert row is not None
    return row


def _set_status(conn: psycopg.Connection, tweet_id: int, status: str) -> None:
    conn.execute("update public.scheduled_tweets set status = %s where id = %s", (status, tweet_id))


def _jobs_for(conn: psycopg.Connection, tweet_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select id, kind, status from public.jobs"
        " where (payload ->> 'scheduled_tweet_id')::bigint = %s order by id",
        (tweet_id,),
    ).fetchall()


# scheduled_tweets -------------------------------------------------------------------------------


def test_content_row_creates_a_post_tweet_job(conn: psycopg.Connection) -> None:
    when = scalar(conn, "select date_trunc('second', now() + interval '2 hours')")
    row = _schedule(conn, content="Hello from Postgres", scheduled_for=when)
    assert row["status"] == "pending" and row["job_id"] is not None
    j = job(conn, row["job_id"])
    assert j["kind"] == "post_tweet"
    assert j["payload"] == {"scheduled_tweet_id": row["id"]}
    assert j["run_at"] == when == row["scheduled_for"]
    assert j["status"] == "queued"
    assert j["dedupe_key"] == f"post_tweet:{row['id']}"


def test_topic_row_creates_a_generate_tweet_job_now(conn: psycopg.Connection) -> None:
    row = _schedule(conn, topic="  pg_cron tricks  ", with_image=True)
    assert row["topic"] == "pg_cron tricks"  # trimmed
    j = job(conn, row["job_id"])
    assert j["kind"] == "generate_tweet"
    assert j["payload"] == {"scheduled_tweet_id": row["id"]}
    assert j["run_at"] == row["scheduled_for"]
    assert scalar(conn, "select now() - %s::timestamptz", (row["scheduled_for"],)) < timedelta(
        seconds=5
    )
    assert [c["id"] for c in claim(conn, kinds=("generate_tweet",))] == [row["job_id"]]


def test_cancel_cancels_the_queued_job(conn: psycopg.Connection) -> None:
    row = _schedule(conn, content="to be cancelled")
    _set_status(conn, row["id"], "cancelled")
    assert job(conn, row["job_id"])["status"] == "cancelled"
    assert job(conn, row["job_id"])["finished_at"] is not None
    assert claim(conn, kinds=("post_tweet",)) == []
    # Cancelled is final.
    with pytest.raises(psycopg.errors.CheckViolation, match="cancelled is final"):
        _set_status(conn, row["id"], "pending")


def test_cancelling_a_posted_or_posting_tweet_is_refused(conn: psycopg.Connection) -> None:
    row = _schedule(conn, content="already out")
    _set_status(conn, row["id"], "posting")
    with pytest.raises(
        psycopg.errors.CheckViolation, match="cannot cancel a tweet that is posting"
    ):
        _set_status(conn, row["id"], "cancelled")
    conn.execute(
        "update public.scheduled_tweets set status = 'posted', tweet_id = '123' where id = %s",
        (row["id"],),
    )
    with pytest.raises(psycopg.errors.CheckViolation, match="cannot cancel a tweet that is posted"):
        _set_status(conn, row["id"], "cancelled")
    assert _row(conn, row["id"])["status"] == "posted"
    with pytest.raises(psycopg.errors.CheckViolation, match="posted is final"):
        _set_status(conn, row["id"], "pending")


def test_approve_enqueues_post_tweet(conn: psycopg.Connection) -> None:
    row = _schedule(conn, topic="approval flow")
    with pytest.raises(psycopg.errors.CheckViolation, match="only a tweet awaiting approval"):
        _set_status(conn, row["id"], "approved")
    # The worker's path: generate, then wait for a human.
    [gen] = claim(conn, kinds=("generate_tweet",))
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', content = 'Drafted'"
        " where id = %s",
        (row["id"],),
    )
    assert (
        scalar(conn, "select public.complete_job(%s, 'w1', %s)", (gen["id"], gen["lease_token"]))
        is True
    )
    _set_status(conn, row["id"], "approved")

    after = _row(conn, row["id"])
    assert after["approved_at"] is not None and after["job_id"] != row["job_id"]
    post = job(conn, after["job_id"])
    assert (post["kind"], post["status"], post["payload"]) == (
        "post_tweet",
        "queued",
        {"scheduled_tweet_id": row["id"]},
    )
    assert [c["id"] for c in claim(conn, kinds=("post_tweet",))] == [post["id"]]


def test_cancelling_an_approved_tweet_cancels_its_post_job(conn: psycopg.Connection) -> None:
    row = _schedule(conn, topic="changed my mind")
    [generation] = claim(conn, kinds=("generate_tweet",))  # the text is written, the job done
    _set_status(conn, row["id"], "awaiting_approval")
    assert scalar(
        conn,
        "select public.complete_job(%s, %s, %s)",
        (generation["id"], generation["locked_by"], generation["lease_token"]),
    )
    _set_status(conn, row["id"], "approved")
    post_id = _row(conn, row["id"])["job_id"]
    assert job(conn, post_id)["status"] == "queued"
    _set_status(conn, row["id"], "cancelled")
    assert job(conn, post_id)["status"] == "cancelled"
    assert claim(conn, kinds=("post_tweet", "generate_tweet")) == []


def test_approve_keeps_a_future_schedule(conn: psycopg.Connection) -> None:
    when = scalar(conn, "select now() + interval '3 hours'")
    row = _schedule(conn, topic="later", scheduled_for=when)
    _set_status(conn, row["id"], "generating")
    _set_status(conn, row["id"], "awaiting_approval")
    _set_status(conn, row["id"], "approved")
    assert job(conn, _row(conn, row["id"])["job_id"])["run_at"] == when


def test_reject(conn: psycopg.Connection) -> None:
    row = _schedule(conn, topic="not good")
    with pytest.raises(psycopg.errors.CheckViolation, match="only a tweet awaiting approval"):
        _set_status(conn, row["id"], "rejected")
    _set_status(conn, row["id"], "awaiting_approval")
    _set_status(conn, row["id"], "rejected")
    assert _row(conn, row["id"])["status"] == "rejected"
    assert [k for _, k, _ in _jobs_for(conn, row["id"])] == ["generate_tweet"]  # no post job
    with pytest.raises(psycopg.errors.CheckViolation, match="rejected is final"):
        _set_status(conn, row["id"], "pending")
    with pytest.raises(psycopg.errors.CheckViolation, match=r"approved \(it is rejected\)"):
        _set_status(conn, row["id"], "approved")


def test_rescheduling_moves_the_job(conn: psycopg.Connection) -> None:
    row = _schedule(conn, content="move me")
    later = scalar(conn, "select date_trunc('second', now() + interval '5 hours')")
    conn.execute(
        "update public.scheduled_tweets set scheduled_for = %s where id = %s", (later, row["id"])
    )
    assert job(conn, row["job_id"])["run_at"] == later
    assert claim(conn, kinds=("post_tweet",)) == []
    sooner = scalar(conn, "select date_trunc('second', now() - interval '1 minute')")
    conn.execute(
        "update public.scheduled_tweets set scheduled_for = %s where id = %s", (sooner, row["id"])
    )
    assert [c["id"] for c in claim(conn, kinds=("post_tweet",))] == [row["job_id"]]
    # Once the job is running, rescheduling the row does not touch it.
    conn.execute(
        "update public.scheduled_tweets set scheduled_for = now() + interval '1 day' where id = %s",
        (row["id"],),
    )
    assert job(conn, row["job_id"])["status"] == "running"
    assert job(conn, row["job_id"])["run_at"] == sooner


def test_schedule_generated_tweet_uses_a_persona_topic(conn: psycopg.Connection) -> None:
    topics = scalar(conn, "select value -> 'topics' from public.configs where key = 'persona'")
    assert topics
    set_config(conn, "schedule", {"with_image": True})
    new_id = scalar(conn, "select public.schedule_generated_tweet()")
    row = _row(conn, new_id)
    assert row["topic"] in topics
    assert row["content"] is None and row["source"] == "schedule" and row["with_image"] is True
    assert [k for _, k, _ in _jobs_for(conn, new_id)] == ["generate_tweet"]
    # Without persona topics it still produces a row.
    set_config(conn, "persona", {"topics": []})
    other = scalar(conn, "select public.schedule_generated_tweet()")
    assert _row(conn, other)["topic"] == "anything in character"


# replies ----------------------------------------------------------------------------------------


def _reply(conn: psycopg.Connection, reply_id: str, author: str = "u42", **kw: Any) -> None:
    cols = {"reply_id": reply_id, "author_id": author, "content": "nice", **kw}
    names = ", ".join(cols)
    values = ", ".join(f"%({c})s" for c in cols)
    conn.execute(f"insert into public.replies ({names}) values ({values})", cols)


def _enterprise(conn: psycopg.Connection) -> None:
    """Likes exist only on Enterprise access (since 2026-04-20) and only when asked for: the
    like tests run there, with auto_like on."""
    set_config(conn, "quotas", {"plan": "enterprise"})
    set_config(conn, "engagement", {"auto_like": True})


def _like_jobs(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select payload ->> 'reply_id', priority, dedupe_key from public.jobs"
        " where kind = 'like_reply' order by id"
    ).fetchall()


def test_reply_creates_a_like_job(conn: psycopg.Connection) -> None:
    _enterprise(conn)
    _reply(conn, "r1")
    assert _like_jobs(conn) == [("r1", 10, "like_reply:r1")]
    # Re-ingesting the same reply (after a delete) never creates a second job.
    conn.execute("delete from public.replies where reply_id = 'r1'")
    _reply(conn, "r1")
    conn.execute(
        "insert into public.replies (reply_id, author_id) values ('r1', 'u42')"
        " on conflict (reply_id) do nothing"
    )
    assert len(_like_jobs(conn)) == 1
    # Like jobs outrank ordinary work.
    conn.execute("select public.enqueue_job('collect_stats', '{}', now() - interval '1 hour', 1)")
    [first] = claim(conn, kinds=("collect_stats", "like_reply"))
    assert first["kind"] == "like_reply"


def test_no_like_job_when_auto_like_is_off(conn: psycopg.Connection) -> None:
    _enterprise(conn)
    set_config(conn, "engagement", {"auto_like": False})
    _reply(conn, "r2")
    assert _like_jobs(conn) == []
    set_config(conn, "engagement", {"auto_like": True})
    _reply(conn, "r3")
    assert [r[0] for r in _like_jobs(conn)] == ["r3"]


def test_no_like_job_for_the_bots_own_replies(conn: psycopg.Connection) -> None:
    _enterprise(conn)
    conn.execute("update public.x_account set user_id = 'bot-1', username = 'chirpbase'")
    _reply(conn, "r4", author="bot-1")
    _reply(conn, "r5", author="someone")
    assert [r[0] for r in _like_jobs(conn)] == ["r5"]


def test_no_like_job_for_skipped_authors_or_already_liked(conn: psycopg.Connection) -> None:
    _enterprise(conn)
    conn.execute(
        "update public.configs set value = jsonb_set(value, '{skip_authors}', %s)"
        " where key = 'engagement'",
        (Jsonb(["spammer", "rival"]),),
    )
    _reply(conn, "r6", author="spammer")
    _reply(conn, "r7", author="rival")
    _reply(conn, "r8", author="fan", liked=True)
    _reply(conn, "r9", author="fan")
    assert [r[0] for r in _like_jobs(conn)] == ["r9"]
