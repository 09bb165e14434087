"""The worker's claim loop against a real database, with the doorbell off (polling only)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.settings import make_settings
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import StartupError, Worker


def job_row(conn: psycopg.Connection, job_id: int) -> dict:
    cur = conn.execute(
        "select status, attempts, last_error, result, started_at, run_at from public.jobs where id = %s",
        (job_id,),
    )
    cols = [c.name for c in cur.description or []]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(cols, row, strict=True))


def enqueue(conn: psycopg.Connection, payload: str = "{}", run_at: datetime | None = None) -> int:
    return conn.execute(
        "select public.enqueue_job('noop', %s::jsonb, %s)", (payload, run_at)
    ).fetchone()[0]


async def test_job_runs_and_completes(conn: psycopg.Connection, dsn: str) -> None:
    job_id = enqueue(conn)
    async with running(Worker(make_settings(dsn), kinds=["noop"])):
        row = await wait_for(
            lambda: job_row(conn, job_id)["status"] == "succeeded" and job_row(conn, job_id)
        )
    assert row["result"]["ok"] is True
    assert row["attempts"] == 1


async def test_handler_failure_retries_then_dead(conn: psycopg.Connection, dsn: str) -> None:
    job_id = conn.execute(
        "select public.enqueue_job('noop', '{\"fail\": \"retry\"}'::jsonb, null, 0, null, 2)"
    ).fetchone()[0]
    async with running(Worker(make_settings(dsn), kinds=["noop"])):
        await wait_for(lambda: job_row(conn, job_id)["attempts"] == 1, message="first attempt")
        # Skip the backoff instead of waiting for it.
        conn.execute(
            "update public.jobs set run_at = now() where id = %s and status = 'queued'", (job_id,)
        )
        row = await wait_for(
            lambda: job_row(conn, job_id)["status"] == "dead" and job_row(conn, job_id),
            message="dead after max attempts",
        )
    assert row["attempts"] == 2
    assert "noop asked to fail" in row["last_error"]
    alert = conn.execute(
        "select kind, level from public.alerts where dedupe_key = 'job_dead:noop' and resolved_at is null"
    ).fetchone()
    assert alert == ("job_dead", "critical")


async def test_give_up_and_invalid_payload_go_straight_to_dead(
    conn: psycopg.Connection, dsn: str
) -> None:
    give_up = enqueue(conn, '{"fail": "give_up"}')
    invalid = enqueue(conn, '{"duration_s": "soon", "surprise": 1}')
    async with running(Worker(make_settings(dsn), kinds=["noop"])):
        await wait_for(lambda: job_row(conn, give_up)["status"] == "dead")
        bad = await wait_for(
            lambda: job_row(conn, invalid)["status"] == "dead" and job_row(conn, invalid)
        )
        # The loop survives both and keeps working.
        ok = enqueue(conn)
        await wait_for(lambda: job_row(conn, ok)["status"] == "succeeded")
    assert job_row(conn, give_up)["attempts"] == 1
    assert bad["last_error"].startswith("invalid noop payload:")
    assert "duration_s" in bad["last_error"] and "surprise" in bad["last_error"]


async def test_future_job_runs_on_time_without_any_event(
    conn: psycopg.Connection, dsn: str
) -> None:
    run_at = datetime.now(UTC) + timedelta(seconds=1.5)
    job_id = enqueue(conn, run_at=run_at)
    # Fallback poll far away: only the known run_at can wake the loop in time.
    settings = make_settings(dsn, poll_interval_s=60)
    async with running(Worker(settings, kinds=["noop"])):
        row = await wait_for(
            lambda: job_row(conn, job_id)["status"] == "succeeded" and job_row(conn, job_id),
            timeout=10,
        )
    late = (row["started_at"] - run_at).total_seconds()
    assert 0 <= late < 0.5, f"started {late:.3f}s after run_at"


async def test_per_kind_concurrency_limit(conn: psycopg.Connection, dsn: str) -> None:
    ids = [enqueue(conn, '{"duration_s": 0.3}') for _ in range(40)]
    worker = Worker(make_settings(dsn), kinds=["noop"])
    limit = worker.loop.specs["noop"].concurrency
    peak = 0
    async with running(worker):

        def all_done() -> bool:
            nonlocal peak
            peak = max(peak, worker.loop.running_count)
            n = conn.execute(
                "select count(*) from public.jobs where id = any(%s) and status = 'succeeded'",
                (ids,),
            ).fetchone()[0]
            return n == len(ids)

        await wait_for(all_done, timeout=20)
    assert 1 < peak <= limit


async def test_sigterm_mid_job_finishes_or_releases(conn: psycopg.Connection, dsn: str) -> None:
    short = enqueue(conn, '{"duration_s": 0.5}')
    long = enqueue(conn, '{"duration_s": 30}')
    settings = make_settings(dsn, shutdown_grace_s=1.5, x_connect_timeout_s=0.5, x_timeout_s=1)
    worker = Worker(settings, kinds=["noop"])
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 10)
    await wait_for(lambda: worker.loop.running_count == 2, message="both jobs running")
    t0 = time.monotonic()
    worker._signal(__import__("signal").Signals.SIGTERM)
    await asyncio.wait_for(task, 15)
    assert time.monotonic() - t0 < 5
    assert job_row(conn, short)["status"] == "succeeded"
    long_row = job_row(conn, long)
    assert long_row["status"] == "queued"  # handed back, not lost or stuck
    assert long_row["attempts"] == 0  # the interrupted attempt is refunded


async def test_startup_fails_fast_with_pending_migrations(
    conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute(
        "delete from supabase_migrations.schema_migrations where version = (select max(version) from supabase_migrations.schema_migrations)"
    )
    with pytest.raises(StartupError, match="migration"):
        await Worker(make_settings(dsn), kinds=["noop"]).start()


async def test_startup_fails_fast_when_database_unreachable() -> None:
    worker = Worker(
        make_settings("postgresql://postgres:hunter2-secret@127.0.0.1:9/none"), kinds=["noop"]
    )
    with pytest.raises(StartupError) as info:
        await worker.start()
    assert "DATABASE_URL" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


async def test_health_reports_spend_and_projected_monthly_cost(
    conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute("select public.record_api_usage('tweets', 1, 50, 0, estimated_cost_usd => 0.5)")
    conn.execute("select public.record_api_usage('openai:chat', 1, estimated_cost_usd => 0.2)")
    async with running(Worker(make_settings(dsn), kinds=["noop"])) as worker:
        cost = await wait_for(
            lambda: worker.health()[1]["cost"].get("spent_usd") and worker.health()[1]["cost"]
        )
    assert (cost["spent_usd"], cost["x_usd"], cost["openai_usd"]) == (0.7, 0.5, 0.2)
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    elapsed = (now - start) / (end - start)
    if elapsed > 0.02:
        assert abs(cost["projected_month_usd"] - 0.7 / elapsed) < 0.02
    else:  # the first hours of a month: no projection yet
        assert cost["projected_month_usd"] is None
    # ... against the budget (quotas.monthly_budget_usd, $50 by default), to the cycle's end.
    assert (cost["budget_usd"], cost["budget_percent"]) == (50, 1.4)
    assert cost["cycle_ends"].startswith(end.date().isoformat())


async def test_health_follows_x_billing_cycle_once_x_reported_it(
    conn: psycopg.Connection, dsn: str
) -> None:
    """With X's cap_reset_day known, the cycle (and its projection) runs from that day."""
    today = datetime.now(UTC)
    day = today.day - 1 if today.day > 1 else 28
    conn.execute("select public.set_cap_reset_day(%s)", (day,))
    conn.execute("select public.record_api_usage('tweets', 1, 1, 0, estimated_cost_usd => 1.0)")
    async with running(Worker(make_settings(dsn), kinds=["noop"])) as worker:
        cost = await wait_for(
            lambda: worker.health()[1]["cost"].get("spent_usd") and worker.health()[1]["cost"]
        )
    starts = conn.execute("select public.current_month()").fetchone()
    assert starts is not None and cost["month"] == starts[0].isoformat()
    assert starts[0].day == day and cost["spent_usd"] == 1.0
