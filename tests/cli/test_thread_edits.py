"""`chirpbase show`, `edit --part`, `approve` on a generated thread awaiting approval: the same
SQL doors the console uses (edit_thread_part, the status change), every part counted as X
counts it before the database is asked."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import Cli
from tests.sql.test_thread_edits import THREE, awaiting
from tests.sql.test_threads import parts, row
from worker.content.tweet_text import weighted_length
from worker.ops.cli import EXIT_FAILURE, EXIT_USAGE


def test_show_lists_every_part_in_order_with_its_count(cli: Cli, conn: psycopg.Connection) -> None:
    thread = awaiting(conn)
    conn.execute(
        "update public.scheduled_tweets set poll_options = '{locks,latches}',"
        " poll_duration_minutes = 90 where id = %s",
        (thread,),
    )
    run = cli("show", str(thread))
    assert run.code == 0, run
    assert f"thread of 3 parts {thread} (awaiting_approval)" in run.out
    lines = [line.strip() for line in run.out.splitlines() if line.strip().startswith("part")]
    assert lines == [
        f"part {i} (awaiting_approval) ({weighted_length(t)}/280): {t}"
        for i, t in enumerate(THREE, start=1)
    ]
    assert "poll: locks / latches, open 90 minutes" in run.out
    data = cli("show", str(thread), "--json").json()
    assert [(p["thread_position"], p["content"]) for p in data["parts"]] == list(
        enumerate(THREE, start=1)
    )
    assert data["parts"][0]["weighted_length"] == weighted_length(THREE[0])

    single = cli("schedule", "A single post", "--json").json()["id"]
    one = cli("show", str(single))
    assert one.code == 0 and f"tweet {single} (pending)" in one.out
    assert "text (13/280): A single post" in one.out
    assert cli("show", "999999").code == EXIT_FAILURE


def test_edit_a_part_then_approve_the_thread(cli: Cli, conn: psycopg.Connection) -> None:
    thread = awaiting(conn)
    better = "Keys are 64-bit numbers you pick 🔑"
    run = cli("edit", str(thread), better, "--part", "2")
    assert run.code == 0, run
    assert f"thread {thread} part 2 of 3 now reads ({weighted_length(better)}/280)" in run.out
    assert row(conn, thread)["thread"] == [THREE[0], better, THREE[2]]

    # Refused, each with the reason, and nothing changes.
    for args, reason in (
        (("x" * 281, "--part", "3"), "part 3: tweet text is too long: weighted length 281 > 280"),
        ((THREE[0], "--part", "3"), "thread parts 1 and 3 are the same text"),
        (("one more", "--part", "4"), "the thread has parts 1 to 3; there is no part 4"),
        (("the whole thread?",), "is a thread: its parts are edited one by one"),
    ):
        refused = cli("edit", str(thread), *args)
        assert refused.code == EXIT_USAGE, refused
        assert reason in refused.err, refused
    assert row(conn, thread)["thread"] == [THREE[0], better, THREE[2]]

    approved = cli("approve", str(thread))
    assert approved.code == 0, approved
    assert f"approved thread {thread} of 3 parts: part 1 posts at" in approved.out
    made = parts(conn, thread)
    assert [p["content"] for p in made] == [THREE[0], better, THREE[2]]
    assert [p["job_kind"] for p in made] == ["post_tweet", None, None]
    late = cli("edit", str(thread), "too late", "--part", "1")
    assert late.code == EXIT_USAGE and "(it is approved)" in late.err, late
