"""The doors the CLI and the console change threads through: edit_thread_part, and
reschedule_scheduled_tweet on a thread.

A generated thread awaits approval as one row whose `thread` holds its parts; a part is edited
there, checked as a written thread is at the door (length, emptiness, characters X refuses, no
two parts alike), and only then. Nothing of a thread changes once a part is posting or posted.
An approved thread moved to another time takes its parts, and part 1's queued job, with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.sql.helpers import scalar
from tests.sql.test_threads import _generate, parts, post, row
from tests.sql.test_validation import _insert

THREE = ["Advisory locks, a thread 🧵", "Keys are numbers you pick.", "Release them."]


def awaiting(conn: psycopg.Connection, texts: list[str] = THREE) -> int:
    thread = _insert(conn, topic="advisory locks", thread_parts=len(texts))
    _generate(conn, thread, texts, approval=True)
    assert row(conn, thread)["status"] == "awaiting_approval"
    return thread


def edit(conn: psycopg.Connection, thread: int, part: int | None, text: str) -> list[Any]:
    return conn.execute(
        "select id, thread from public.edit_thread_part(%s, %s, %s)", (thread, part, text)
    ).fetchall()


def test_a_part_of_a_thread_awaiting_approval_is_edited_in_place(
    conn: psycopg.Connection,
) -> None:
    thread = awaiting(conn)
    assert row(conn, thread)["edited_at"] is None
    got = edit(conn, thread, 2, "  Keys are 64-bit numbers you pick. 🔑\n")
    assert got == [(thread, [THREE[0], "Keys are 64-bit numbers you pick. 🔑", THREE[2]])]
    after = row(conn, thread)
    assert after["status"] == "awaiting_approval" and after["edited_at"] is not None
    assert parts(conn, thread) == []  # still one row: the parts are made on approval
    first_edit = after["edited_at"]
    edit(conn, thread, 2, "Keys are 64-bit numbers you pick. 🔑")  # the same text: no edit
    assert row(conn, thread)["edited_at"] == first_edit
    assert edit(conn, 999_999, 1, "nobody") == []

    # Approved: the parts are the edited ones, in order, and only part 1 is queued.
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (thread,))
    made = parts(conn, thread)
    assert [p["content"] for p in made] == [
        THREE[0],
        "Keys are 64-bit numbers you pick. 🔑",
        THREE[2],
    ]
    assert [p["job_kind"] for p in made] == ["post_tweet", None, None]


@pytest.mark.parametrize(
    ("part", "text", "message"),
    [
        (2, "   \n\t", "thread part 2 is empty or whitespace only"),
        (3, "界" * 141, "thread part 3 is at least 282 weighted characters; X allows 280"),
        (1, "bad \ufeff char", "thread part 1 contains a character X refuses"),
        (3, THREE[0], "thread parts 1 and 3 are the same text; X refuses a duplicate post"),
        (4, "one too many", "the thread has parts 1 to 3; there is no part 4"),
        (0, "before the first", "there is no part 0"),
        (None, "which one?", "there is no part null"),
    ],
)
def test_a_part_x_would_refuse_is_refused_and_nothing_changes(
    conn: psycopg.Connection, part: int | None, text: str, message: str
) -> None:
    thread = awaiting(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match=message):
        edit(conn, thread, part, text)
    after = row(conn, thread)
    assert (after["thread"], after["edited_at"]) == (THREE, None)


def test_only_a_thread_awaiting_approval_is_edited(conn: psycopg.Connection) -> None:
    written = _insert(conn, thread=THREE)
    with pytest.raises(
        psycopg.errors.CheckViolation,
        match=r"only a thread awaiting approval can be edited \(it is pending\)",
    ):
        edit(conn, written, 1, "changed")
    first = parts(conn, written)[0]
    with pytest.raises(psycopg.errors.CheckViolation, match=f"part 1 of thread {written}"):
        edit(conn, first["id"], 1, "changed")
    single = _insert(conn, content="just a post")
    with pytest.raises(psycopg.errors.CheckViolation, match="not a thread"):
        edit(conn, single, 1, "changed")
    generating = _insert(conn, topic="vacuum", thread_parts=2)
    with pytest.raises(psycopg.errors.CheckViolation, match=r"\(it is pending\)"):
        edit(conn, generating, 1, "not written yet")

    rejected = awaiting(conn)
    conn.execute(
        "update public.scheduled_tweets set status = 'rejected' where id = %s", (rejected,)
    )
    with pytest.raises(psycopg.errors.CheckViolation, match=r"\(it is rejected\)"):
        edit(conn, rejected, 1, "too late")
    assert row(conn, rejected)["thread"] == THREE


def test_nothing_changes_once_a_part_is_posting_or_posted(conn: psycopg.Connection) -> None:
    thread = awaiting(conn)
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (thread,))
    first, second, _third = parts(conn, thread)
    conn.execute(
        "update public.scheduled_tweets set status = 'posting' where id = %s", (first["id"],)
    )
    with pytest.raises(
        psycopg.errors.CheckViolation, match="part 1 of the thread is posting; nothing of a thread"
    ):
        edit(conn, thread, 3, "a better ending")
    conn.execute(
        "update public.scheduled_tweets set status = 'pending' where id = %s", (first["id"],)
    )
    post(conn, first["id"], "9401")
    with pytest.raises(psycopg.errors.CheckViolation, match="part 1 of the thread is posted"):
        edit(conn, thread, 2, "a better middle")
    assert [p["content"] for p in parts(conn, thread)] == THREE
    assert parts(conn, thread)[1]["id"] == second["id"]


def test_rescheduling_an_approved_thread_moves_its_parts_and_first_job(
    conn: psycopg.Connection,
) -> None:
    thread = awaiting(conn)
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (thread,))
    later = scalar(conn, "select date_trunc('second', now()) + interval '5 hours'")
    got = conn.execute(
        "select id, scheduled_for from public.reschedule_scheduled_tweet(%s, %s)", (thread, later)
    ).fetchall()
    assert got == [(thread, later)]
    made = parts(conn, thread)
    assert [p["scheduled_for"] for p in made] == [later] * 3
    assert made[0]["job_run_at"] == later  # part 1 posts at the new time, not the old one

    # A pending written thread still moves as before, into the past within the day allowed.
    written = _insert(conn, thread=THREE[:2])
    earlier = later - timedelta(hours=6)
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, %s)", (written, earlier))
    assert [p["scheduled_for"] for p in parts(conn, written)] == [earlier] * 2


def test_a_thread_posting_cannot_be_rescheduled(conn: psycopg.Connection) -> None:
    thread = _insert(conn, thread=THREE)
    post(conn, parts(conn, thread)[0]["id"], "9501")
    assert row(conn, thread)["status"] == "posting"
    with pytest.raises(
        psycopg.errors.CheckViolation, match="cannot reschedule a tweet that is posting"
    ):
        conn.execute("select * from public.reschedule_scheduled_tweet(%s, now())", (thread,))


def test_edit_thread_part_is_for_the_service_role_only(conn: psycopg.Connection) -> None:
    for role in ("anon", "authenticated"):
        assert (
            scalar(
                conn,
                "select has_function_privilege(%s,"
                " 'public.edit_thread_part(bigint, integer, text)', 'execute')",
                (role,),
            )
            is False
        )
    assert (
        scalar(
            conn,
            "select has_function_privilege('service_role',"
            " 'public.edit_thread_part(bigint, integer, text)', 'execute')",
        )
        is True
    )
