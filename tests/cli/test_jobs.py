"""jobs list / show / retry / cancel over the queue's SQL functions."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import Cli
from tests.sql.helpers import claim, enqueue, job, scalar
from worker.ops.cli import EXIT_FAILURE, EXIT_USAGE


def dead_job(conn: psycopg.Connection) -> int:
    """A noop job that failed its only attempt (as the worker would leave it)."""
    job_id = enqueue(conn, "noop", {"n": 1}, max_attempts=1)
    [held] = claim(conn, "w1", ("noop",))
    assert held["id"] == job_id
    assert (
        scalar(
            conn,
            "select public.fail_job(%s, 'w1', %s, 'boom: X said 500')",
            (job_id, held["lease_token"]),
        )
        == "dead"
    )
    return job_id


def test_jobs_list_filters_by_status_and_kind(cli: Cli, conn: psycopg.Connection) -> None:
    dead = dead_job(conn)
    queued = [enqueue(conn, "noop") for _ in range(3)]
    stats = enqueue(conn, "collect_stats")

    run = cli("jobs", "list", "--json")
    assert run.code == 0, run
    assert [j["id"] for j in run.json()] == [stats, *reversed(queued), dead]

    dead_only = cli("jobs", "list", "--status", "dead", "--json").json()
    assert [(j["id"], j["status"], j["last_error"]) for j in dead_only] == [
        (dead, "dead", "boom: X said 500")
    ]
    assert [j["id"] for j in cli("jobs", "list", "--kind", "collect_stats", "--json").json()] == [
        stats
    ]
    assert len(cli("jobs", "list", "--kind", "noop", "--limit", "2", "--json").json()) == 2

    table = cli("jobs", "list")
    assert table.code == 0 and "collect_stats" in table.out and "boom: X said 500" in table.out


def test_jobs_list_refuses_unknown_kind_and_status(cli: Cli) -> None:
    run = cli("jobs", "list", "--kind", "post_tweets")
    assert run.code == EXIT_USAGE, run
    assert "unknown job kind 'post_tweets'; one of" in run.err and "post_tweet" in run.err
    assert cli("jobs", "list", "--status", "bogus").code == EXIT_USAGE
    assert cli("jobs", "list", "--limit", "0").code == EXIT_USAGE


def test_jobs_show(cli: Cli, conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, "noop", {"scheduled_tweet_id": 7})
    run = cli("jobs", "show", str(job_id), "--json")
    assert run.code == 0, run
    assert run.json()["payload"] == {"scheduled_tweet_id": 7}
    assert run.json()["status"] == "queued"
    human = cli("jobs", "show", str(job_id))
    assert human.code == 0 and '"scheduled_tweet_id": 7' in human.out
    missing = cli("jobs", "show", "424242")
    assert missing.code == EXIT_FAILURE and "no job with id 424242" in missing.err


def test_jobs_retry_a_dead_job(cli: Cli, conn: psycopg.Connection) -> None:
    job_id = dead_job(conn)
    run = cli("jobs", "retry", str(job_id))
    assert run.code == 0, run
    assert f"job {job_id} (noop) queued again" in run.out
    after = job(conn, job_id)
    assert (after["status"], after["attempts"], after["finished_at"]) == ("queued", 0, None)
    # It runs again: a worker can claim it.
    assert [j["id"] for j in claim(conn, "w2", ("noop",))] == [job_id]


def test_jobs_retry_refuses_a_live_job(cli: Cli, conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, "noop")
    run = cli("jobs", "retry", str(job_id))
    assert run.code == EXIT_USAGE, run
    assert (
        f"job {job_id} (noop) is queued; only dead, failed or cancelled jobs can be retried"
        in run.err
    )
    assert cli("jobs", "retry", "999").code == EXIT_FAILURE


def test_jobs_cancel(cli: Cli, conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, "noop")
    run = cli("jobs", "cancel", str(job_id))
    assert run.code == 0, run
    assert job(conn, job_id)["status"] == "cancelled"
    again = cli("jobs", "cancel", str(job_id))
    assert again.code == EXIT_USAGE, again
    assert "is cancelled; only queued jobs can be cancelled" in again.err
