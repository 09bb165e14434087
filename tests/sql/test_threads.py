"""Threads in the database: the door checks every part as X would, a thread becomes one row per
part, only the first part has a job, and recording part k as posted (the worker's own
record_posted query) chains part k+1 to it and queues it in the same transaction; failures and
cancellations stop the rest; the order is enforced."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import scalar
from tests.sql.test_validation import _insert, _refused
from worker.db import query

FIVE = ["one 1/5", "two 2/5", "three 3/5", "four 4/5", "five 5/5"]


def parts(conn: psycopg.Connection, thread_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select s.*, j.kind as job_kind, j.status as job_status, j.run_at as job_run_at"
            " from public.scheduled_tweets s left join public.jobs j on j.id = s.job_id"
            " where s.thread_of = %s order by s.thread_position",
            (thread_id,),
        ).fetchall()


def row(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "select * from public.scheduled_tweets where id = %s", (row_id,)
        ).fetchone()
    assert found is not None
    return found


def post(conn: psycopg.Connection, part_id: int, tweet_id: str) -> None:
    """What post_tweet does around a successful call: intent, then the recorded tweet."""
    assert conn.execute(query("mark_posting"), {"id": part_id}).fetchone() is not None
    conn.execute(
        query("record_posted"),
        {
            "tweet_id": tweet_id,
            "content": row(conn, part_id)["content"],
            "image_url": None,
            "posted_at": None,
            "scheduled_tweet_id": part_id,
            "media_id": None,
            "alt_text": None,
        },
    )


@pytest.mark.parametrize(
    ("cols", "message"),
    [
        ({"thread": ["only one"]}, "a thread has 2 to 25 parts; got 1"),
        ({"thread": [f"part {i}" for i in range(26)]}, "a thread has 2 to 25 parts; got 26"),
        (
            {"thread": ["fine", "  \n"]},
            "thread part 2 is empty or whitespace only, which X refuses",
        ),
        ({"thread": ["fine", None]}, "thread part 2 is empty"),
        ({"thread": ["fine", "a" * 281]}, "thread part 2 is at least 281 weighted characters"),
        ({"thread": ["字" * 141, "fine"]}, "thread part 1 is at least 282 weighted characters"),
        ({"thread": ["ok", "bad \ufeff"]}, "thread part 2 contains a character X refuses"),
        ({"thread": ["same", "other", " same "]}, "thread parts 1 and 3 are the same text"),
        ({"thread": [["a", "b"], ["c", "d"]]}, "thread must be a flat list"),
        ({"thread": ["a", "b"], "content": "c"}, "give one of content, topic or thread, not two"),
        ({"thread": ["a", "b"], "topic": "c"}, "give one of content, topic or thread, not two"),
        ({"thread": ["a", "b"], "with_image": True}, "with_image asks for a generated image"),
        ({"content": "x", "thread_parts": 3}, "thread_parts goes with a topic"),
        ({"topic": "x", "thread_parts": 1}, "thread_parts is 1; a thread has 2 to 25 parts"),
        ({"topic": "x", "thread_parts": 26}, "thread_parts is 26"),
        ({"content": "x", "thread_of": 1, "thread_position": 1}, "set by chirpbase"),
        ({"thread": ["a", "b"], "thread_tweet_ids": ["1"]}, "set by chirpbase"),
    ],
)
def test_malformed_threads_are_refused(
    shared_conn: psycopg.Connection, cols: dict, message: str
) -> None:
    _refused(shared_conn, message, **cols)


def test_neither_names_the_thread_too(shared_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="not neither") as exc:
        _insert(shared_conn, topic=" ")
    assert (
        exc.value.diag.message_hint == "Or a thread: thread text[] with its parts, posted in order."
    )


def test_a_thread_becomes_one_row_per_part_and_only_the_first_is_queued(
    conn: psycopg.Connection,
) -> None:
    thread = _insert(conn, thread=[f" {t}\n" for t in FIVE])
    assert row(conn, thread)["job_id"] is None  # the parts carry the jobs
    assert row(conn, thread)["thread"] == FIVE  # trimmed
    got = parts(conn, thread)
    assert [p["content"] for p in got] == FIVE
    assert [p["thread_position"] for p in got] == [1, 2, 3, 4, 5]
    assert [p["job_kind"] for p in got] == ["post_tweet", None, None, None, None]
    assert all(p["status"] == "pending" and p["in_reply_to_tweet_id"] is None for p in got)


def test_posting_a_part_chains_and_queues_the_next(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE)
    ids = [p["id"] for p in parts(conn, thread)]
    post(conn, ids[0], "9001")
    got = parts(conn, thread)
    assert got[0]["status"] == "posted"
    assert got[1]["in_reply_to_tweet_id"] == "9001"
    assert (got[1]["job_kind"], got[1]["job_status"]) == ("post_tweet", "queued")
    assert got[2]["job_kind"] is None and got[2]["in_reply_to_tweet_id"] is None
    t = row(conn, thread)
    assert (t["status"], t["tweet_id"], t["thread_tweet_ids"]) == ("posting", "9001", ["9001"])

    for i, part_id in enumerate(ids[1:], start=2):
        post(conn, part_id, f"900{i}")  # a reply to the account's own post: allowed on pay_per_use
    t = row(conn, thread)
    assert t["status"] == "posted"
    assert t["tweet_id"] == "9001"
    assert t["thread_tweet_ids"] == ["9001", "9002", "9003", "9004", "9005"]
    assert [p["in_reply_to_tweet_id"] for p in parts(conn, thread)] == [
        None,
        "9001",
        "9002",
        "9003",
        "9004",
    ]
    assert scalar(conn, "select count(*) from public.tweets") == 5


def test_a_part_cannot_post_before_the_one_before(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE[:3])
    third = parts(conn, thread)[2]["id"]
    with pytest.raises(
        psycopg.errors.CheckViolation, match="part 3 of its thread cannot be posted before part 2"
    ):
        conn.execute(query("mark_posting"), {"id": third})


def test_a_failed_part_stops_the_thread(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE)
    ids = [p["id"] for p in parts(conn, thread)]
    post(conn, ids[0], "9101")
    post(conn, ids[1], "9102")
    conn.execute(query("mark_posting"), {"id": ids[2]})
    conn.execute(query("mark_scheduled_failed"), {"id": ids[2], "error": "X refused the tweet"})
    got = parts(conn, thread)
    assert [p["status"] for p in got] == ["posted", "posted", "failed", "cancelled", "cancelled"]
    t = row(conn, thread)
    assert t["status"] == "failed"
    assert t["error"] == "part 3 of 5 failed: X refused the tweet; 2 of 5 posted"
    assert t["thread_tweet_ids"] == ["9101", "9102"]


def test_cancelling_a_thread_cancels_its_parts_and_their_job(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE[:2])
    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (thread,))
    got = parts(conn, thread)
    assert [p["status"] for p in got] == ["cancelled", "cancelled"]
    assert got[0]["job_status"] == "cancelled"
    assert row(conn, thread)["status"] == "cancelled"


def test_cancelling_the_first_part_cancels_the_thread(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE[:3])
    first = parts(conn, thread)[0]["id"]
    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (first,))
    assert [p["status"] for p in parts(conn, thread)] == ["cancelled"] * 3
    assert row(conn, thread)["status"] == "cancelled"


def test_rescheduling_a_thread_moves_its_first_job(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE[:2])
    conn.execute(
        "update public.scheduled_tweets set scheduled_for = now() + interval '3 hours' where id = %s",
        (thread,),
    )
    first = parts(conn, thread)[0]
    assert first["scheduled_for"] == row(conn, thread)["scheduled_for"]
    assert first["job_run_at"] == first["scheduled_for"]


def test_a_thread_answering_a_mention_and_with_a_poll_puts_both_on_part_one(
    conn: psycopg.Connection,
) -> None:
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values ('555', '42', '@bot hi')"
    )
    thread = _insert(
        conn,
        thread=FIVE[:2],
        in_reply_to_tweet_id="555",
        poll_options=["yes", "no"],
        poll_duration_minutes=60,
    )
    got = parts(conn, thread)
    assert (got[0]["in_reply_to_tweet_id"], got[0]["poll_options"]) == ("555", ["yes", "no"])
    assert (got[1]["in_reply_to_tweet_id"], got[1]["poll_options"]) == (None, None)


def test_parts_of_a_thread_stay_put(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=FIVE[:2])
    first = parts(conn, thread)[0]["id"]
    with pytest.raises(psycopg.errors.CheckViolation, match="do not change"):
        conn.execute(
            "update public.scheduled_tweets set thread_position = 2 where id = %s", (first,)
        )
    with pytest.raises(psycopg.errors.CheckViolation, match="a thread has no text of its own"):
        conn.execute("update public.scheduled_tweets set content = 'x' where id = %s", (thread,))
    with pytest.raises(psycopg.errors.CheckViolation, match="rows of their own"):
        conn.execute("update public.scheduled_tweets set thread = '{x,y}' where id = %s", (thread,))


def _generate(conn: psycopg.Connection, row_id: int, texts: list[str], approval: bool) -> None:
    """What generate_tweet does for a thread: claim, then write the parts in one statement."""
    assert conn.execute(query("claim_generation"), {"id": row_id}).fetchone() is not None
    conn.execute(
        query("finish_thread_generation"),
        {
            "id": row_id,
            "thread": texts,
            "image_path": None,
            "image_url": None,
            "alt_text": None,
            "require_approval": approval,
        },
    )


def test_a_generated_thread_gets_its_parts_when_written(conn: psycopg.Connection) -> None:
    thread = _insert(conn, topic="advisory locks", thread_parts=3)
    assert (
        scalar(
            conn,
            "select kind from public.jobs j join public.scheduled_tweets s"
            " on s.job_id = j.id where s.id = %s",
            (thread,),
        )
        == "generate_tweet"
    )
    assert parts(conn, thread) == []
    _generate(conn, thread, FIVE[:3], approval=False)
    got = parts(conn, thread)
    assert [p["content"] for p in got] == FIVE[:3]
    assert [p["job_kind"] for p in got] == ["post_tweet", None, None]
    assert row(conn, thread)["status"] == "pending"


def test_a_generated_thread_awaits_approval_then_its_parts_post(conn: psycopg.Connection) -> None:
    thread = _insert(conn, topic="advisory locks", thread_parts=2)
    _generate(conn, thread, FIVE[:2], approval=True)
    assert row(conn, thread)["status"] == "awaiting_approval"
    assert parts(conn, thread) == []  # nothing to post before a person says yes
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (thread,))
    got = parts(conn, thread)
    assert [p["job_kind"] for p in got] == ["post_tweet", None]
    # The thread row itself never gets a post job of its own.
    assert (
        scalar(
            conn,
            "select count(*) from public.jobs where kind = 'post_tweet' and status = 'queued'"
            " and payload ->> 'scheduled_tweet_id' = %s",
            (str(thread),),
        )
        == 0
    )
    post(conn, got[0]["id"], "9301")
    post(conn, got[1]["id"], "9302")
    assert (row(conn, thread)["status"], row(conn, thread)["thread_tweet_ids"]) == (
        "posted",
        ["9301", "9302"],
    )
