"""Alert lifecycle: one open alert per condition, resolved automatically when it clears."""

from __future__ import annotations

import asyncio
import contextlib
import time

import psycopg

from tests.alerts.conftest import (
    FakeDoorbell,
    FakeWorker,
    alerts,
    evaluate,
    open_alert,
    raise_alert,
)
from tests.sql.helpers import claim, enqueue, scalar, set_config
from tests.waiting import wait_for
from worker.alerts.monitor import AlertMonitor

# -- dedupe ----------------------------------------------------------------------------------------


def test_raising_twice_keeps_one_open_alert(conn: psycopg.Connection) -> None:
    first = raise_alert(conn, "job_dead:noop", message="first")
    second = raise_alert(conn, "job_dead:noop", message="second")
    assert first == second
    [row] = alerts(conn, "job_dead:noop")
    assert row["occurrences"] == 2 and row["message"] == "second" and row["resolved_at"] is None
    # Once resolved, the same condition opens a new alert.
    assert scalar(conn, "select public.close_alert('job_dead:noop', 'fixed')") is True
    assert raise_alert(conn, "job_dead:noop") != first
    assert [a["resolved_at"] is None for a in alerts(conn, "job_dead:noop")] == [False, True]
    assert alerts(conn, "job_dead:noop")[0]["details"]["resolution"] == "fixed"


# -- quotas ----------------------------------------------------------------------------------------


def _consume(conn: psycopg.Connection, amount: int = 1, resource: str = "posts") -> bool:
    return bool(scalar(conn, "select public.consume_quota(%s, %s)", (resource, amount)))


def test_quota_threshold_resolves_when_the_cap_is_raised(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 10, "alert_threshold": 0.8})
    assert _consume(conn, 8)
    assert open_alert(conn, "quota_threshold:posts") is not None
    assert evaluate(conn) == set()  # still at 80 %: stays open, not bumped
    assert open_alert(conn, "quota_threshold:posts")["occurrences"] == 1

    set_config(conn, "quotas", {"monthly_post_cap": 100})
    assert evaluate(conn) == {("resolved", "quota_threshold:posts")}
    [row] = alerts(conn, "quota_threshold:posts")
    assert row["details"]["resolution"] == "back under 80% of the cap: 8.000000 of 100"


def test_quota_cap_resolves_on_refund_and_in_a_new_month(conn: psycopg.Connection) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 5})
    assert _consume(conn, 5)
    assert not _consume(conn, 1)  # does not fit: consume_quota raises the cap alert
    assert open_alert(conn, "quota_cap:posts")["level"] == "critical"
    assert evaluate(conn) == set()  # 5 of 5: still capped

    conn.execute("select public.refund_quota('posts', 1)")
    assert evaluate(conn) == {("resolved", "quota_cap:posts")}
    assert open_alert(conn, "quota_cap:posts") is None

    assert _consume(conn, 1) and not _consume(conn, 1)
    assert open_alert(conn, "quota_cap:posts") is not None
    # A new month: this month's usage moves to last month (as if the calendar turned).
    conn.execute(
        "update public.quota_usage set month = (month - interval '1 month')::date"
        " where resource = 'posts'"
    )
    conn.execute(
        "update public.alerts set details = details || jsonb_build_object('month',"
        " (public.current_month() - interval '1 month')::date) where resolved_at is null"
    )
    resolved = evaluate(conn)
    assert ("resolved", "quota_cap:posts") in resolved
    assert ("resolved", "quota_threshold:posts") in resolved
    assert alerts(conn, "quota_cap:posts")[-1]["details"]["resolution"].startswith("new month")


def test_quota_alerts_follow_a_lowered_cap(conn: psycopg.Connection) -> None:
    assert _consume(conn, 9)  # pay-per-use: no cap, no alert
    assert evaluate(conn) == set()
    set_config(conn, "quotas", {"monthly_post_cap": 9})
    assert evaluate(conn) == {
        ("raised", "quota_threshold:posts"),
        ("raised", "quota_cap:posts"),
    }
    assert evaluate(conn) == set()  # one open alert per condition, not bumped each time
    set_config(conn, "quotas", {"monthly_post_cap": None})
    assert evaluate(conn) == {
        ("resolved", "quota_threshold:posts"),
        ("resolved", "quota_cap:posts"),
    }


# -- jobs ------------------------------------------------------------------------------------------


def _run(
    conn: psycopg.Connection, *, fail: str | None = None, max_attempts: int = 5, job_id: int = 0
) -> int:
    """Enqueue (unless job_id), claim and finish one noop job; fail="retry"|"dead"."""
    job_id = job_id or enqueue(conn, "noop", max_attempts=max_attempts)
    [claimed] = claim(conn, "w1", ("noop",))
    assert claimed["id"] == job_id
    tok = claimed["lease_token"]
    if fail is None:
        assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (job_id, tok)) is True
    else:
        scalar(
            conn,
            "select public.fail_job(%s, 'w1', %s, 'boom: upstream said no', interval '0 seconds',"
            " %s)",
            (job_id, tok, fail == "retry"),
        )
    return job_id


def test_job_dead_resolves_when_a_later_job_of_the_kind_succeeds(conn: psycopg.Connection) -> None:
    _run(conn, fail="dead")
    assert open_alert(conn, "job_dead:noop")["level"] == "critical"
    assert evaluate(conn, threshold=100) == set()  # the dead job is the latest word on noop
    _run(conn)
    assert evaluate(conn, threshold=100) == {("resolved", "job_dead:noop")}
    [row] = alerts(conn, "job_dead:noop")
    assert row["details"]["resolution"] == "a later noop job succeeded"


def test_job_dead_resolves_when_the_dead_jobs_are_retried(conn: psycopg.Connection) -> None:
    dead = _run(conn, fail="dead")
    _run(conn, fail="dead")
    assert open_alert(conn, "job_dead:noop")["occurrences"] == 2
    conn.execute("select public.retry_job(%s)", (dead,))
    assert evaluate(conn, threshold=100) == set()  # one is still dead
    conn.execute("select public.retry_job(id) from public.jobs where status = 'dead'")
    assert evaluate(conn, threshold=100) == {("resolved", "job_dead:noop")}
    assert "retried or pruned" in alerts(conn, "job_dead:noop")[0]["details"]["resolution"]


def test_repeated_failures_raise_once_and_resolve_on_success(conn: psycopg.Connection) -> None:
    job = enqueue(conn, "noop", max_attempts=10)
    _run(conn, fail="retry", job_id=job)
    _run(conn, fail="retry", job_id=job)
    assert evaluate(conn, threshold=3) == set()  # 2 < 3
    _run(conn, fail="retry", job_id=job)
    assert scalar(conn, "select count(*) from public.job_failures where kind = 'noop'") == 3
    assert evaluate(conn, threshold=3) == {("raised", "job_failures:noop")}
    row = open_alert(conn, "job_failures:noop")
    assert row["kind"] == "job_failures" and row["details"]["failures"] == 3
    assert "noop failed 3 times" in row["message"] and "boom: upstream said no" in row["message"]
    _run(conn, fail="retry", job_id=job)
    assert evaluate(conn, threshold=3) == set()  # still failing: the open alert stays as is
    assert open_alert(conn, "job_failures:noop")["occurrences"] == 1

    _run(conn, job_id=job)  # it works again
    assert evaluate(conn, threshold=3) == {("resolved", "job_failures:noop")}
    # The failures before the recovery do not count towards a new alert.
    _run(conn, fail="retry")
    assert evaluate(conn, threshold=3) == set()
    assert open_alert(conn, "job_failures:noop") is None


def test_snoozes_and_releases_are_not_failures(conn: psycopg.Connection) -> None:
    for _ in range(3):
        job = enqueue(conn, "noop")
        [held] = claim(conn, "w1", ("noop",))
        conn.execute("select public.snooze_job(%s, 'w1', %s, now())", (job, held["lease_token"]))
        [held] = claim(conn, "w1", ("noop",))
        conn.execute(
            "select public.release_jobs('w1', array[%s]::bigint[], array[%s]::bigint[])",
            (job, held["lease_token"]),
        )
    assert scalar(conn, "select count(*) from public.job_failures") == 0
    # An expired lease is a failed attempt.
    job = enqueue(conn, "noop")
    assert job in {j["id"] for j in claim(conn, "w1", ("noop",), max_jobs=10)}
    conn.execute(
        "update public.jobs set locked_until = now() - interval '1 s' where id = %s", (job,)
    )
    assert scalar(conn, "select public.reap_expired_leases()") == 1
    assert scalar(
        conn, "select error from public.job_failures where job_id = %s", (job,)
    ).startswith("lease expired")


# -- X and OpenAI refusals ---------------------------------------------------------------------


def test_x_auth_resolves_when_x_accepts_a_call_again(conn: psycopg.Connection) -> None:
    raise_alert(conn, "x_auth", level="critical", message="X rejected the credentials")
    conn.execute("select public.record_api_usage('openai:chat')")  # not an X call
    assert evaluate(conn) == set()
    conn.execute("select public.record_api_usage('mentions', reads => 2)")
    assert evaluate(conn) == {("resolved", "x_auth")}


def test_openai_auth_resolves_when_generation_succeeds_again(conn: psycopg.Connection) -> None:
    raise_alert(conn, "openai_auth", level="critical", message="OpenAI rejected the key")
    job = enqueue(conn, "generate_tweet", {"scheduled_tweet_id": 1})
    [held] = claim(conn, "w1", ("generate_tweet",))
    assert evaluate(conn) == set()
    conn.execute("select public.complete_job(%s, 'w1', %s)", (job, held["lease_token"]))
    assert evaluate(conn) == {("resolved", "openai_auth")}


def test_a_worker_scoped_alert_nobody_confirms_goes_stale(conn: psycopg.Connection) -> None:
    raise_alert(conn, "doorbell_down:gone-worker", kind="doorbell_down")
    assert evaluate(conn) == set()
    conn.execute(
        "update public.alerts set last_seen_at = now() - interval '6 minutes'"
        " where dedupe_key = 'doorbell_down:gone-worker'"
    )
    assert evaluate(conn) == {("resolved", "doorbell_down:gone-worker")}


def test_replicas_evaluate_one_at_a_time(conn: psycopg.Connection, dsn: str) -> None:
    set_config(conn, "quotas", {"monthly_post_cap": 1})
    _consume(conn, 1)
    conn.execute("delete from public.alerts")
    with psycopg.connect(dsn) as other:  # holds the evaluation lock in an open transaction
        other.execute("select * from public.evaluate_alerts()")
        assert evaluate(conn) == set()  # skipped, not blocked
        other.rollback()
    assert evaluate(conn) == {("raised", "quota_threshold:posts"), ("raised", "quota_cap:posts")}


# -- the worker's own eyes (AlertMonitor) ------------------------------------------------------


async def test_doorbell_down_past_the_grace_period_then_reconnected(
    monitor: AlertMonitor, fake_worker: FakeWorker, conn: psycopg.Connection
) -> None:
    key = "doorbell_down:worker-test-1"
    bell = FakeDoorbell(connected=False, down_since=time.monotonic())
    fake_worker.doorbell = bell
    await monitor.tick()
    assert alerts(conn, key) == []  # within the grace period
    bell.down_since = time.monotonic() - 30
    changes = await monitor.tick()
    assert [(c.action, c.dedupe_key) for c in changes] == [("raised", key)]
    seen = open_alert(conn, key)["last_seen_at"]
    await monitor.tick()  # still down: confirmed (last_seen_at), not re-raised
    row = open_alert(conn, key)
    assert row["occurrences"] == 1 and row["last_seen_at"] > seen
    assert "Realtime doorbell of worker worker-test-1 down for 30s" in row["message"]

    bell.connected, bell.down_since = True, None
    changes = await monitor.tick()
    assert [(c.action, c.dedupe_key) for c in changes] == [("resolved", key)]
    [row] = alerts(conn, key)
    assert row["details"]["resolution"].startswith("reconnected after")


async def test_database_outage_is_recorded_once_the_database_is_back(
    monitor: AlertMonitor, fake_worker: FakeWorker, conn: psycopg.Connection, database
) -> None:
    fake_worker.db_up, fake_worker.db_down_since = False, time.monotonic() - 90
    assert await monitor.tick() == []  # nothing can be written now
    assert alerts(conn, "database_down") == []
    fake_worker.db_up, fake_worker.db_down_since = True, None
    changes = await monitor.tick()
    assert [(c.action, c.dedupe_key) for c in changes] == [("recorded", "database_down")]
    [row] = alerts(conn, "database_down")
    assert row["resolved_at"] is not None and row["level"] == "critical"
    assert 90 <= row["details"]["down_for_s"] < 120
    assert (row["resolved_at"] - row["created_at"]).total_seconds() >= 90
    assert "database unreachable for 1m 3" in row["message"]

    # Another replica saw the same outage: folded into the same row.
    other = AlertMonitor(
        FakeWorker(database, fake_worker.config, worker_id="worker-test-2"), monitor.policy
    )
    other.worker.db_up, other.worker.db_down_since = False, time.monotonic() - 80
    await other.tick()
    other.worker.db_up = True
    await other.tick()
    [row] = alerts(conn, "database_down")
    assert row["occurrences"] == 2
    assert row["details"]["workers"] == ["worker-test-1", "worker-test-2"]

    # A blip shorter than the grace period is only logged.
    fake_worker.db_up, fake_worker.db_down_since = False, time.monotonic() - 1
    await monitor.tick()
    fake_worker.db_up = True
    await monitor.tick()
    assert len(alerts(conn, "database_down")) == 1


async def test_config_rejected_resolves_when_the_stored_value_validates(
    monitor: AlertMonitor, fake_worker: FakeWorker, conn: psycopg.Connection
) -> None:
    # Valid for the database's cheap check, invalid for the worker's model (unknown field).
    conn.execute(
        "update public.configs set value = value || '{\"mood\": \"grumpy\"}' where key = 'persona'"
    )
    await fake_worker.config.reload()  # LiveConfig rejects it and raises the alert
    assert open_alert(conn, "config_rejected:persona") is not None
    await monitor.tick()
    assert open_alert(conn, "config_rejected:persona") is not None  # still invalid
    conn.execute("update public.configs set value = value - 'mood' where key = 'persona'")
    # Resolved even by a monitor whose worker has not reloaded (another replica, a restart).
    changes = await monitor.tick()
    assert ("resolved", "config_rejected:persona") in {(c.action, c.dedupe_key) for c in changes}
    assert alerts(conn, "config_rejected:persona")[0]["details"]["resolution"] == (
        "configs.persona now holds a valid value"
    )


async def test_monitor_runs_the_sql_rules(monitor: AlertMonitor, conn: psycopg.Connection) -> None:
    raise_alert(conn, "x_usage_capped", kind="x_usage_capped", details={})
    conn.execute("select public.record_api_usage('tweets', posts => 1)")
    woken: list[bool] = []
    monitor.on_change = lambda: woken.append(True)
    changes = await monitor.tick()
    assert ("resolved", "x_usage_capped") in {(c.action, c.dedupe_key) for c in changes}
    assert woken == [True]


async def test_a_stopping_worker_resolves_its_doorbell_alert(
    monitor: AlertMonitor, fake_worker: FakeWorker, conn: psycopg.Connection
) -> None:
    fake_worker.doorbell = FakeDoorbell(connected=False, down_since=time.monotonic() - 30)
    task = asyncio.create_task(monitor.run())
    await wait_for(lambda: open_alert(conn, "doorbell_down:worker-test-1"), timeout=5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    [row] = alerts(conn, "doorbell_down:worker-test-1")
    assert row["resolved_at"] is not None
    assert row["details"]["resolution"] == "the worker stopped"
