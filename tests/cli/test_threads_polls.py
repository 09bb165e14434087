"""`chirpbase thread`, `schedule --poll`, `generate --thread`: the same rows as SQL, every part
and poll checked as X checks it before anything is inserted."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import Cli
from tests.sql.helpers import scalar
from worker.ops.cli import EXIT_USAGE


def count(conn: psycopg.Connection) -> int:
    return int(scalar(conn, "select count(*) from public.scheduled_tweets"))


def test_thread_schedules_one_row_per_part(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("thread", "First part 🧵", "Second part", "Third part", "--json")
    assert run.code == 0, run
    data = run.json()
    assert data["thread"] == ["First part 🧵", "Second part", "Third part"]
    assert [p["thread_position"] for p in data["parts"]] == [1, 2, 3]
    assert [p["job_id"] is not None for p in data["parts"]] == [True, False, False]
    assert (
        scalar(conn, "select source from public.scheduled_tweets where id = %s", (data["id"],))
        == "cli"
    )
    human = cli("thread", "Another one", "And its end")
    assert human.code == 0, human
    assert "scheduled thread" in human.out and "of 2 parts" in human.out


def test_thread_refuses_a_part_x_would_refuse_with_its_position(
    cli: Cli, conn: psycopg.Connection
) -> None:
    before = count(conn)
    run = cli("thread", "fine", "x" * 281)
    assert run.code == EXIT_USAGE, run
    assert "thread part 2" in run.err and "281" in run.err
    one = cli("thread", "only one part")
    assert one.code == EXIT_USAGE, one
    assert "2 to 25 parts" in one.err
    assert count(conn) == before


def test_schedule_with_a_poll(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli(
        "schedule",
        "Tabs or spaces?",
        "--poll",
        "tabs",
        "--poll",
        "spaces",
        "--poll-minutes",
        "60",
        "--json",
    )
    assert run.code == 0, run
    assert (run.json()["poll_options"], run.json()["poll_duration_minutes"]) == (
        ["tabs", "spaces"],
        60,
    )
    before = count(conn)
    for args, message in (
        (["--poll", "only", "--poll-minutes", "60"], "2 to 4 options"),
        (["--poll", "a", "--poll", "b"], "needs a duration"),
        (["--poll", "a", "--poll", "x" * 26, "--poll-minutes", "60"], "25 per option"),
        (["--poll", "a", "--poll", "b", "--poll-minutes", "3"], "5 to 10,080 minutes"),
    ):
        refused = cli("schedule", "Pick", *args)
        assert refused.code == EXIT_USAGE, refused
        assert message in refused.err, refused.err
    assert count(conn) == before


def test_generate_a_thread(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("generate", "--topic", "advisory locks", "--thread", "4", "--json")
    assert run.code == 0, run
    assert run.json()["thread_parts"] == 4
    assert "generated thread of 3 parts" in cli("generate", "--topic", "x", "--thread", "3").out
    bad = cli("generate", "--topic", "x", "--thread", "1")
    assert bad.code == EXIT_USAGE and "2 to 25 parts" in bad.err


def test_status_lists_a_thread_once_with_its_progress(cli: Cli, conn: psycopg.Connection) -> None:
    made = cli("thread", "Opening part", "Closing part", "--at", "+1h", "--json")
    assert made.code == 0, made
    run = cli("status", "--json")
    assert run.code == 0, run
    upcoming = run.json()["upcoming"]
    assert [u["content"] for u in upcoming] == ["Opening part (thread: 0 of 2 parts posted)"]
