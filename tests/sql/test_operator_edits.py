"""The doors the CLI and the console edit through: edit_scheduled_tweet, reschedule_scheduled_tweet.

Editing is for drafts awaiting approval only (no job holds the row then); the text is checked
as an insert is. Rescheduling is refused once posting started, and moves the queued job of a
pending or approved row with it, never to before now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import claim, scalar


def _row(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "select * from public.scheduled_tweets where id = %s", (row_id,)
        ).fetchone()
    assert found is not None
    return found


def _draft(conn: psycopg.Connection, text: str = "Drafted by the model") -> int:
    row_id = int(
        scalar(conn, "insert into public.scheduled_tweets (topic) values ('x') returning id")
    )
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', content = %s"
        " where id = %s",
        (text, row_id),
    )
    return row_id


def _edit(conn: psycopg.Connection, row_id: int, text: str) -> list[tuple]:
    return conn.execute(
        "select id, content from public.edit_scheduled_tweet(%s, %s)", (row_id, text)
    ).fetchall()


def test_edit_changes_a_draft_awaiting_approval(conn: psycopg.Connection) -> None:
    row_id = _draft(conn)
    assert _row(conn, row_id)["edited_at"] is None
    assert _edit(conn, row_id, "  Better words 🐘\n") == [(row_id, "Better words 🐘")]
    after = _row(conn, row_id)
    assert after["content"] == "Better words 🐘" and after["edited_at"] is not None
    assert after["status"] == "awaiting_approval"
    first_edit = after["edited_at"]
    _edit(conn, row_id, "Better words 🐘")  # the same text again is not an edit
    assert _row(conn, row_id)["edited_at"] == first_edit
    assert _edit(conn, 999_999, "nobody") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   \n\t", "the text is empty"),
        ("界" * 141, "282 weighted characters; X allows 280"),
        ("bad \ufeff char", "a character X refuses"),
    ],
)
def test_edit_refuses_text_x_refuses(conn: psycopg.Connection, text: str, message: str) -> None:
    row_id = _draft(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match=message):
        _edit(conn, row_id, text)
    assert _row(conn, row_id)["content"] == "Drafted by the model"


def test_edit_refuses_any_other_state(conn: psycopg.Connection) -> None:
    written = int(
        scalar(conn, "insert into public.scheduled_tweets (content) values ('as is') returning id")
    )
    with pytest.raises(
        psycopg.errors.CheckViolation, match=r"awaiting approval can be edited \(it is pending\)"
    ):
        _edit(conn, written, "changed")
    row_id = _draft(conn)
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (row_id,))
    with pytest.raises(psycopg.errors.CheckViolation, match="it is approved"):
        _edit(conn, row_id, "too late")
    assert _row(conn, row_id)["content"] == "Drafted by the model"


def test_reschedule_moves_pending_and_approved_posts(conn: psycopg.Connection) -> None:
    now = scalar(conn, "select date_trunc('second', now())")
    later = now + timedelta(hours=5)
    pending = int(
        scalar(
            conn, "insert into public.scheduled_tweets (content) values ('move me') returning id"
        )
    )
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, %s)", (pending, later))
    job = _row(conn, pending)["job_id"]
    assert scalar(conn, "select run_at from public.jobs where id = %s", (job,)) == later

    approved = _draft(conn)
    conn.execute(
        "update public.scheduled_tweets set status = 'approved' where id = %s", (approved,)
    )
    post_job = _row(conn, approved)["job_id"]
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, %s)", (approved, later))
    assert _row(conn, approved)["scheduled_for"] == later
    assert scalar(conn, "select run_at from public.jobs where id = %s", (post_job,)) == later
    assert claim(conn, kinds=("post_tweet",)) == []  # not before its new time
    # Into the past (within the day the door allows): due now, never before now.
    earlier = now - timedelta(hours=2)
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, %s)", (approved, earlier))
    run_at: datetime = scalar(conn, "select run_at from public.jobs where id = %s", (post_job,))
    assert run_at >= now
    assert [c["id"] for c in claim(conn, kinds=("post_tweet",))] == [post_job]


def test_reschedule_refusals(conn: psycopg.Connection) -> None:
    row_id = int(
        scalar(conn, "insert into public.scheduled_tweets (content) values ('x1') returning id")
    )
    far = scalar(conn, "select now() + interval '2 years'")
    with pytest.raises(psycopg.errors.CheckViolation, match="outside the allowed window"):
        conn.execute("select * from public.reschedule_scheduled_tweet(%s, %s)", (row_id, far))
    with pytest.raises(psycopg.errors.CheckViolation, match="give a time"):
        conn.execute("select * from public.reschedule_scheduled_tweet(%s, null)", (row_id,))
    for status in ("cancelled",):
        conn.execute(
            "update public.scheduled_tweets set status = %s where id = %s", (status, row_id)
        )
        with pytest.raises(
            psycopg.errors.CheckViolation, match=f"cannot reschedule a tweet that is {status}"
        ):
            conn.execute("select * from public.reschedule_scheduled_tweet(%s, now())", (row_id,))
    assert (
        conn.execute("select * from public.reschedule_scheduled_tweet(999999, now())").fetchall()
        == []
    )


def test_scheduled_tweets_is_published_for_realtime(conn: psycopg.Connection) -> None:
    assert (
        scalar(
            conn,
            "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'"
            " and tablename = 'scheduled_tweets'",
        )
        == 1
    )
