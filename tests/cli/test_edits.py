"""edit / reschedule (the doors the console uses too) and `console hash-password`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from argon2 import PasswordHasher

from tests.cli.conftest import Cli
from tests.cli.test_scheduling import awaiting, row
from worker.ops.cli import EXIT_FAILURE, EXIT_USAGE


def test_edit_a_draft_then_approve_it(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = awaiting(conn)
    run = cli("edit", str(tweet_id), "Sharper words, same idea 🐘")
    assert run.code == 0, run
    assert "now reads: Sharper words, same idea 🐘" in run.out
    assert row(conn, tweet_id)[1] == "Sharper words, same idea 🐘"
    assert cli("approve", str(tweet_id)).code == 0
    run = cli("edit", str(tweet_id), "after approval")
    assert run.code == EXIT_USAGE, run
    assert "only a tweet awaiting approval can be edited (it is approved)" in run.err


def test_edit_counts_as_x_does(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = awaiting(conn)
    too_long = "界" * 130 + " https://example.com/a"  # 260 + 1 + 23
    run = cli("edit", str(tweet_id), too_long)
    assert run.code == EXIT_USAGE, run
    assert "weighted length 284 > 280" in run.err
    assert cli("edit", str(tweet_id), "   ").code == EXIT_USAGE
    assert row(conn, tweet_id)[1] == "Draft"
    assert cli("edit", "999", "nobody").code == EXIT_FAILURE


def test_reschedule_moves_the_post_and_its_job(cli: Cli, conn: psycopg.Connection) -> None:
    tweet_id = cli("schedule", "later on", "--at", "+1h", "--json").json()["id"]
    run = cli("reschedule", str(tweet_id), "--at", "+400d")
    assert run.code == EXIT_USAGE and "outside the allowed window" in run.err, run
    when = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    run = cli("reschedule", str(tweet_id), "--at", when.strftime("%Y-%m-%dT%H:%M"))
    assert run.code == 0, run
    assert f"tweet {tweet_id} now posts {when:%Y-%m-%d %H:%M} UTC" in run.out
    *_rest, scheduled_for, _source, _kind, _job_status, run_at = row(conn, tweet_id)
    assert scheduled_for == when and run_at == when
    assert cli("cancel", str(tweet_id)).code == 0
    run = cli("reschedule", str(tweet_id), "--at", "+2h")
    assert run.code == EXIT_USAGE and "cannot reschedule a tweet that is cancelled" in run.err
    assert cli("reschedule", str(tweet_id), "--at", "someday").code == EXIT_USAGE


def test_hash_password_prints_an_argon2id_hash(cli: Cli) -> None:
    from typer.testing import CliRunner

    from worker.ops.cli import app

    result = CliRunner().invoke(
        app, ["console", "hash-password", "--stdin"], input="a long passphrase\n"
    )
    assert result.exit_code == 0, result.output
    encoded = result.stdout.strip()
    assert encoded.startswith("$argon2id$") and "a long passphrase" not in result.output
    assert PasswordHasher().verify(encoded, "a long passphrase")
    short = CliRunner().invoke(app, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == EXIT_USAGE and "at least 12 characters" in short.stderr
