"""Real worker processes: several replicas, kill -9, SIGTERM, and what their logs contain."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

from sandbox.stack import CREDENTIALS, SandboxStack, ThreadedSandbox
from tests.processes import WorkerProcess
from tests.waiting import wait_for_sync


@pytest.fixture
def stack(admin_dsn: str) -> Iterator[SandboxStack]:
    """The stand-ins on their own thread: these tests block while worker processes run."""
    with ThreadedSandbox(admin_dsn) as s:
        yield s


def _env(stack: SandboxStack, dsn: str, **extra: str) -> dict[str, str]:
    return {
        **stack.env(dsn),
        "DOORBELL_ENABLED": "true",
        "POLL_INTERVAL_S": "1",
        # Short calls to the loopback X stand-in, so a short shutdown grace can cover one.
        "X_CONNECT_TIMEOUT_S": "0.5",
        "X_TIMEOUT_S": "0.5",
        **extra,
    }


def _status(conn: psycopg.Connection, job_id: int) -> tuple[str, int, dict | None]:
    return conn.execute(
        "select status, attempts, result from public.jobs where id = %s", (job_id,)
    ).fetchone()


def test_two_workers_never_run_the_same_job(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    workers = [
        WorkerProcess(_env(stack, dsn), name=f"replica-{i}", kinds="noop").start() for i in range(2)
    ]
    try:
        for w in workers:
            w.wait_ready()
        # Both are up before the work arrives, so both compete for it.
        ids = [
            r[0]
            for r in conn.execute(
                "select public.enqueue_job('noop', '{\"duration_s\": 0.05}'::jsonb)"
                " from generate_series(1, 300)"
            ).fetchall()
        ]
        wait_for_sync(
            lambda: conn.execute(
                "select count(*) = %s from public.jobs where id = any(%s) and status = 'succeeded'",
                (len(ids), ids),
            ).fetchone()[0],
            timeout=60,
            message="all jobs succeeded",
        )
    finally:
        for w in workers:
            w.stop()
    rows = conn.execute(
        "select attempts, result ->> 'worker_id' from public.jobs where id = any(%s)", (ids,)
    ).fetchall()
    assert {a for a, _ in rows} == {1}  # nobody ran a job a second time
    by_worker = {w for _, w in rows}
    assert by_worker == {"replica-0", "replica-1"}  # both took part


def test_kill_9_mid_job_is_picked_up_after_the_lease(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    job_id = conn.execute(
        "select public.enqueue_job('noop', '{\"duration_s\": 2}'::jsonb)"
    ).fetchone()[0]
    first = WorkerProcess(_env(stack, dsn, LEASE_S="2"), name="doomed", kinds="noop").start()
    first.wait_ready()
    wait_for_sync(lambda: _status(conn, job_id)[0] == "running", message="job running")
    first.kill()
    # pg_cron runs reap_expired_leases every minute in production; here the test stands in for it.
    wait_for_sync(
        lambda: conn.execute("select public.reap_expired_leases()").fetchone()[0] == 1,
        timeout=10,
        message="lease expired and reaped",
    )
    assert _status(conn, job_id)[:2] == ("queued", 1)
    second = WorkerProcess(_env(stack, dsn), name="survivor", kinds="noop").start()
    try:
        second.wait_ready()
        wait_for_sync(lambda: _status(conn, job_id)[0] == "succeeded", timeout=20)
    finally:
        second.stop()
    _status_now, attempts, result = _status(conn, job_id)
    assert attempts == 2 and result["worker_id"] == "survivor"


def test_sigterm_mid_job_releases_it_for_the_next_worker(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    job_id = conn.execute(
        "select public.enqueue_job('noop', '{\"duration_s\": 60}'::jsonb)"
    ).fetchone()[0]
    w = WorkerProcess(_env(stack, dsn, SHUTDOWN_GRACE_S="1"), name="graceful", kinds="noop").start()
    w.wait_ready()
    wait_for_sync(lambda: _status(conn, job_id)[0] == "running", message="job running")
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    assert w.wait(15) == 0
    assert time.monotonic() - t0 < 10
    status, attempts, _ = _status(conn, job_id)
    assert (status, attempts) == ("queued", 0)  # back in the queue, attempt refunded
    assert "released 1 unfinished job" in w.output()


def test_no_secret_in_worker_output(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    # Work that touches every client and fails in places: a post, a bad like, a config rejection.
    conn.execute(
        "insert into public.scheduled_tweets (content) values ('secret-free logs, please')"
    )
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values ('999999999', '42', 'hi')"
    )
    stack.x.fail_next("like", 3, status=503)
    w = WorkerProcess(_env(stack, dsn), name="chatty").start()
    try:
        w.wait_ready()
        wait_for_sync(
            lambda: conn.execute("select count(*) from public.tweets").fetchone()[0] == 1,
            timeout=20,
        )
        conn.execute(
            "update public.configs set value = value || '{\"language\": \"\"}' where key = 'persona'"
        )
        wait_for_sync(lambda: "config persona rejected" in w.output(), timeout=10)
        health = w.health()
    finally:
        w.stop()
    out = w.output() + str(health)
    assert "posted tweet" in out  # the log really covers the work
    secrets = [*CREDENTIALS.values(), "postgres:postgres"]
    leaked = [s for s in secrets if s in out]
    assert leaked == []
