"""schedule / generate / approve / reject / cancel: rows in scheduled_tweets, jobs by trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.cli.conftest import Cli
from tests.sql.helpers import scalar
from worker.ops.cli import EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE
from worker.ops.operator import Refused
from worker.ops.when import parse_when


def row(conn: psycopg.Connection, tweet_id: int) -> tuple:
    found = conn.execute(
        "select s.status, s.content, s.topic, s.with_image, s.scheduled_for, s.source, j.kind,"
        " j.status, j.run_at from public.scheduled_tweets s left join public.jobs j on j.id = s.job_id"
        " where s.id = %s",
        (tweet_id,),
    ).fetchone()
    assert found is not None
    return found


def test_schedule_inserts_a_row_and_its_post_job(cli: Cli, conn: psycopg.Connection) -> None:
    before = datetime.now(UTC)
    run = cli("schedule", "Hello from the CLI", "--at", "+2h", "--json")
    assert run.code == 0, run
    data = run.json()
    status, content, topic, _img, when, source, kind, job_status, run_at = row(conn, data["id"])
    assert (status, content, topic, source) == ("pending", "Hello from the CLI", None, "cli")
    assert (kind, job_status) == ("post_tweet", "queued")
    assert timedelta(hours=2) <= when - before < timedelta(hours=2, minutes=1)
    assert run_at == when


def test_schedule_human_output_names_the_row_and_job(cli: Cli) -> None:
    run = cli("schedule", "Plain output")
    assert run.code == 0, run
    assert "scheduled tweet 1" in run.out and "post_tweet" in run.out


def test_schedule_refuses_overlong_text_with_one_clear_line(
    cli: Cli, conn: psycopg.Connection
) -> None:
    run = cli("schedule", "x" * 300)
    assert run.code == EXIT_USAGE, run
    assert run.err.strip().count("\n") == 0
    assert "not scheduled: tweet text is too long: weighted length 300 > 280" in run.err
    assert scalar(conn, "select count(*) from public.scheduled_tweets") == 0


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("next tuesday", "cannot read time 'next tuesday'"),
        ("25:00", "invalid time of day"),
        ("2020-01-01", "more than a day in the past"),
    ],
)
def test_schedule_refuses_bad_times(
    cli: Cli, conn: psycopg.Connection, at: str, message: str
) -> None:
    run = cli("schedule", "hi", "--at", at)
    assert run.code == EXIT_USAGE, run
    assert message in run.err
    assert scalar(conn, "select count(*) from public.scheduled_tweets") == 0


def test_schedule_refuses_empty_text(cli: Cli) -> None:
    run = cli("schedule", "   ")
    assert run.code == EXIT_USAGE, run
    assert "not scheduled: tweet text is empty or whitespace only, which X refuses" in run.err


def test_generate_with_topic_image_and_time(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("generate", "--topic", "vacuum tuning", "--image", "--at", "tomorrow 09:00", "--json")
    assert run.code == 0, run
    status, content, topic, with_image, when, _src, kind, _js, run_at = row(conn, run.json()["id"])
    assert (status, content, topic, with_image, kind) == (
        "pending",
        None,
        "vacuum tuning",
        True,
        "generate_tweet",
    )
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert (when.astimezone(UTC).date(), when.hour, when.minute) == (tomorrow, 9, 0)
    assert run_at == when


def test_generate_without_topic_draws_from_the_persona(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("generate", "--json")
    assert run.code == 0, run
    topics = scalar(conn, "select value -> 'topics' from public.configs where key = 'persona'")
    assert run.json()["topic"] in topics
    # No --image: the generation config decides (off by default).
    assert run.json()["with_image"] is False


def test_generate_refuses_an_overlong_topic(cli: Cli) -> None:
    run = cli("generate", "--topic", "t" * 600)
    assert run.code == EXIT_USAGE, run
    assert "topic is 600 characters" in run.err


def awaiting(conn: psycopg.Connection, topic: str = "indexes") -> int:
    """A generated tweet the worker has written and parked for approval."""
    tweet_id = scalar(
        conn, "insert into public.scheduled_tweets (topic) values (%s) returning id", (topic,)
    )
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', content = 'Draft' where id = %s",
        (tweet_id,),
    )
    return int(tweet_id)


def test_approve_queues_the_post(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = awaiting(conn)
    run = cli("approve", str(tweet_id))
    assert run.code == 0, run
    assert f"approved tweet {tweet_id}" in run.out
    status, *_rest, kind, job_status, _run_at = row(conn, tweet_id)
    assert (status, kind, job_status) == ("approved", "post_tweet", "queued")
    again = cli("approve", str(tweet_id))
    assert again.code == 0 and "already approved" in again.out


def test_reject_and_refusals(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = awaiting(conn)
    assert cli("reject", str(tweet_id)).code == 0
    assert row(conn, tweet_id)[0] == "rejected"
    pending = scalar(
        conn, "insert into public.scheduled_tweets (content) values ('x') returning id"
    )
    run = cli("approve", str(pending))
    assert run.code == EXIT_USAGE, run
    assert "only a tweet awaiting approval can be approved (it is pending)" in run.err
    run = cli("approve", str(tweet_id))
    assert run.code == EXIT_USAGE, run
    assert "(it is rejected)" in run.err


def test_cancel_cancels_the_row_and_its_job(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = cli("schedule", "later", "--at", "+1d", "--json").json()["id"]
    run = cli("cancel", str(tweet_id))
    assert run.code == 0, run
    status, *_rest, job_status, _run_at = row(conn, tweet_id)
    assert (status, job_status) == ("cancelled", "cancelled")
    assert "already cancelled" in cli("cancel", str(tweet_id)).out


def test_cancel_refuses_a_posted_tweet(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = scalar(
        conn, "insert into public.scheduled_tweets (content) values ('x') returning id"
    )
    conn.execute("update public.scheduled_tweets set status = 'posted' where id = %s", (tweet_id,))
    run = cli("cancel", str(tweet_id))
    assert run.code == EXIT_USAGE, run
    assert f"scheduled_tweets {tweet_id}: cannot cancel a tweet that is posted" in run.err
    assert row(conn, tweet_id)[0] == "posted"


def test_unknown_ids_are_not_found(cli: Cli) -> None:
    for command in ("approve", "reject", "cancel"):
        run = cli(command, "999")
        assert run.code == EXIT_FAILURE, run
        assert "no scheduled tweet with id 999" in run.err


def test_invalid_id_is_a_usage_error(cli: Cli) -> None:
    run = cli("cancel", "abc")
    assert run.code == EXIT_USAGE, run


def test_unreachable_database_exits_4(cli: Cli) -> None:
    run = cli(
        "schedule", "hi", "--database-url", "postgresql://postgres@127.0.0.1:1/none", database=False
    )
    assert run.code == EXIT_UNAVAILABLE, run
    assert "cannot connect to the database" in run.err


# parse_when: the TIME mini-language -----------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("+30m", NOW + timedelta(minutes=30)),
        ("+2h", NOW + timedelta(hours=2)),
        ("+1d", NOW + timedelta(days=1)),
        ("+1h30m", NOW + timedelta(hours=1, minutes=30)),
        ("13:00", datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),
        ("09:00", datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),  # already past today: tomorrow
        ("today 08:00", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        ("tomorrow 09:00", datetime(2026, 11, 26, 9, 0, tzinfo=UTC)),
        ("Tomorrow 9:05", datetime(2026, 11, 26, 9, 5, tzinfo=UTC)),
        ("2026-12-01T09:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01 09:00+01:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T09:00Z", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "soon", "+2x", "24:00", "tomorrow", "-2h"])
def test_parse_when_refuses(text: str) -> None:
    with pytest.raises(Refused):
        parse_when(text, NOW)


def test_schedule_shows_what_x_bills_a_post_with_a_url(cli: Cli, conn: psycopg.Connection) -> None:
    plain = cli("schedule", "no link in this one", "--json").json()
    assert (plain["operation"], plain["price_usd"]) == ("post", 0.015)
    linked = cli("schedule", "the notes: example.com/notes")
    assert linked.code == 0, linked
    assert "X bills $0.200 (post_with_url)" in linked.out
    assert "it contains a URL" in linked.out
    conn.execute(
        "update public.configs set value = jsonb_set(value, '{x,post_with_url}', '0.3')"
        " where key = 'pricing'"
    )
    again = cli("schedule", "https://chirpbase.dev is live", "--json").json()
    assert (again["operation"], again["price_usd"]) == ("post_with_url", 0.3)


def test_schedule_a_reply_only_to_a_post_that_summoned_the_account(
    cli: Cli, conn: psycopg.Connection
) -> None:
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values ('4242', 'u1', 'hi bot')"
    )
    reply = cli("schedule", "hello back", "--reply-to", "4242", "--json")
    assert reply.code == 0, reply
    data = reply.json()
    assert (data["in_reply_to_tweet_id"], data["operation"], data["price_usd"]) == (
        "4242",
        "reply_summoned",
        0.01,
    )
    refused = cli("schedule", "unsolicited", "--reply-to", "777")
    assert refused.code == EXIT_USAGE, refused
    assert "only to a post that summoned the account" in refused.err
