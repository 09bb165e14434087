"""pg_cron: chirpbase-* schedules exist, follow the `schedule` config, and re-sync idempotently.

pg_cron lives in the cluster's `postgres` database, so these tests use the `cron_db` fixture
(that database, held under an advisory lock, with the schedule config restored afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests import pg
from tests.sql.helpers import Jsonb, scalar
from worker.migrate import migrate

DEFAULT_SCHEDULE = {
    "enabled": True,
    "generate_cron": "0 9,13,18 * * *",
    "poll_mentions_cron": "* * * * *",
    "collect_stats_cron": "0 * * * *",
    "job_retention_days": 7,
    "with_image": False,
}
_reapplied = False


@pytest.fixture
def cron(cron_db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The pg_cron database with the current migrations and the default schedule config."""
    global _reapplied
    if not _reapplied:
        # The cron database outlives edits to (unreleased) migrations: bring it up to date.
        migrate(pg.app_dsn("postgres"), reapply=True)
        _reapplied = True
    _set_schedule(cron_db, DEFAULT_SCHEDULE)
    yield cron_db


def _set_schedule(conn: psycopg.Connection, value: dict) -> None:
    conn.execute("update public.configs set value = %s where key = 'schedule'", (Jsonb(value),))


def _patch_schedule(conn: psycopg.Connection, patch: dict) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'schedule'", (Jsonb(patch),)
    )


def _jobs(conn: psycopg.Connection) -> dict[str, tuple]:
    """chirpbase-* cron jobs: name -> (jobid, schedule, command, database, username, active)."""
    rows = conn.execute(
        "select jobname, jobid, schedule, command, database, username, active from cron.job"
        " where jobname like 'chirpbase-%' order by jobname"
    ).fetchall()
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), f"duplicate cron jobs: {names}"
    return {r[0]: tuple(r[1:]) for r in rows}


def test_chirpbase_jobs_have_the_right_schedules_and_commands(cron: psycopg.Connection) -> None:
    jobs = _jobs(cron)
    assert {name: j[1] for name, j in jobs.items()} == {
        "chirpbase-generate": "0 9,13,18 * * *",
        "chirpbase-poll-mentions": "* * * * *",
        "chirpbase-collect-stats": "0 * * * *",
        "chirpbase-reap-leases": "* * * * *",
        "chirpbase-settle-rows": "* * * * *",
        "chirpbase-expire-reply-drafts": "* * * * *",
        "chirpbase-reconcile-usage": "30 * * * *",
        "chirpbase-prune": "17 3 * * *",
    }
    for *_, database, username, active in jobs.values():
        assert (database, username, active) == ("postgres", "postgres", True)
    assert jobs["chirpbase-generate"][2] == "select public.schedule_generated_tweet()"
    assert jobs["chirpbase-reap-leases"][2] == "select public.reap_expired_leases()"
    assert jobs["chirpbase-settle-rows"][2] == "select public.settle_stranded_scheduled_tweets()"
    assert jobs["chirpbase-expire-reply-drafts"][2] == "select public.expire_reply_drafts()"
    assert "enqueue_periodic_job('poll_mentions'" in jobs["chirpbase-poll-mentions"][2]
    assert "enqueue_periodic_job('reconcile_usage'" in jobs["chirpbase-reconcile-usage"][2]
    assert "enqueue_periodic_job('collect_stats'" in jobs["chirpbase-collect-stats"][2]
    prune = jobs["chirpbase-prune"][2]
    assert "prune_finished_jobs(interval '7 days')" in prune
    assert "delete from cron.job_run_details" in prune
    assert "delete from public.x_billed_resources" in prune


def test_cron_commands_run_as_the_postgres_role(cron: psycopg.Connection) -> None:
    """Each command is valid SQL that does its job (run here in a transaction rolled back)."""
    jobs = _jobs(cron)
    with cron.transaction(force_rollback=True):
        before = scalar(cron, "select count(*) from public.jobs where kind = 'poll_mentions'")
        cron.execute(jobs["chirpbase-poll-mentions"][2])
        after = scalar(cron, "select count(*) from public.jobs where kind = 'poll_mentions'")
        assert after in (before, before + 1)  # deduplicated per second with the cron's own run
        job_id = scalar(
            cron,
            "select id from public.jobs where kind = 'poll_mentions' order by id desc limit 1",
        )
        assert job_id is not None

        # One waiting collect_stats job at most: the command makes one, or finds the one that
        # already waits (pg_cron's own run, with no worker in this database).
        assert cron.execute(jobs["chirpbase-collect-stats"][2]).fetchone() is not None
        assert (
            scalar(
                cron,
                "select count(*) from public.jobs where kind = 'collect_stats'"
                " and status in ('queued', 'running') and payload = '{}'",
            )
            >= 1
        )

        new_id = scalar(cron, jobs["chirpbase-generate"][2])
        assert (
            scalar(cron, "select source from public.scheduled_tweets where id = %s", (new_id,))
            == "schedule"
        )

        assert isinstance(scalar(cron, jobs["chirpbase-reap-leases"][2]), int)
        assert isinstance(scalar(cron, jobs["chirpbase-settle-rows"][2]), int)
        assert isinstance(scalar(cron, jobs["chirpbase-expire-reply-drafts"][2]), int)
        cron.execute(jobs["chirpbase-prune"][2])


def test_changing_generate_cron_reschedules(cron: psycopg.Connection) -> None:
    before = _jobs(cron)
    _patch_schedule(cron, {"generate_cron": "*/20 6-22 * * 1-5"})
    after = _jobs(cron)
    assert after["chirpbase-generate"][1] == "*/20 6-22 * * 1-5"
    assert after["chirpbase-generate"][0] == before["chirpbase-generate"][0]  # same job, updated
    assert {k: v for k, v in after.items() if k != "chirpbase-generate"} == {
        k: v for k, v in before.items() if k != "chirpbase-generate"
    }
    _patch_schedule(cron, {"poll_mentions_cron": "*/2 * * * *", "job_retention_days": 30})
    after = _jobs(cron)
    assert after["chirpbase-poll-mentions"][1] == "*/2 * * * *"
    assert "prune_finished_jobs(interval '30 days')" in after["chirpbase-prune"][2]
    assert "interval '30 days'" in after["chirpbase-prune"][2].split(";")[1]


def test_disable_unschedules_generation_and_enable_brings_it_back(
    cron: psycopg.Connection,
) -> None:
    _patch_schedule(cron, {"enabled": False})
    jobs = _jobs(cron)
    assert "chirpbase-generate" not in jobs
    assert set(jobs) == {
        "chirpbase-poll-mentions",
        "chirpbase-collect-stats",
        "chirpbase-reap-leases",
        "chirpbase-settle-rows",
        "chirpbase-expire-reply-drafts",
        "chirpbase-reconcile-usage",
        "chirpbase-prune",
    }
    _patch_schedule(cron, {"enabled": False, "generate_cron": "5 5 * * *"})  # still off
    assert "chirpbase-generate" not in _jobs(cron)
    _patch_schedule(cron, {"enabled": True})
    assert _jobs(cron)["chirpbase-generate"][1] == "5 5 * * *"


def test_sync_schedules_is_idempotent(cron: psycopg.Connection) -> None:
    before = _jobs(cron)
    assert scalar(cron, "select public.sync_schedules()") == 8
    assert scalar(cron, "select public.sync_schedules()") == 8
    assert _jobs(cron) == before
    # Also when generation is off (unscheduling a missing job must not raise).
    _patch_schedule(cron, {"enabled": False})
    assert scalar(cron, "select public.sync_schedules()") == 7
    assert scalar(cron, "select public.sync_schedules()") == 7
    assert len(_jobs(cron)) == 7


def test_a_bad_schedule_is_refused_and_the_cron_job_kept(cron: psycopg.Connection) -> None:
    before = _jobs(cron)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cron expression"):
        _patch_schedule(cron, {"generate_cron": "bad"})
    # Five fields, but not a schedule pg_cron accepts: refused by cron.schedule, nothing changes.
    with pytest.raises(psycopg.Error, match="invalid schedule"):
        _patch_schedule(cron, {"generate_cron": "99 * * * *"})
    assert _jobs(cron) == before
    assert (
        scalar(cron, "select value ->> 'generate_cron' from public.configs where key = 'schedule'")
        == "0 9,13,18 * * *"
    )


def test_clones_without_pg_cron_skip_schedules(conn: psycopg.Connection) -> None:
    assert scalar(conn, "select to_regnamespace('cron')") is None
    assert scalar(conn, "select public.sync_schedules()") == 0
    conn.execute(
        'update public.configs set value = value || \'{"generate_cron": "1 1 * * *"}\''
        " where key = 'schedule'"
    )
