"""The worker with its Realtime doorbell: fast wake-ups, survival without it, live config."""

from __future__ import annotations

import time

import psycopg

from sandbox.gateway import REALTIME_STATE
from sandbox.stack import SandboxStack
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker


def _done(conn: psycopg.Connection, job_id: int) -> bool:
    return conn.execute(
        "select status = 'succeeded' from public.jobs where id = %s", (job_id,)
    ).fetchone()[0]


async def test_doorbell_wakes_the_worker_and_polling_covers_its_absence(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    assert stack.gateway is not None
    realtime = stack.gateway[REALTIME_STATE]
    # The fallback poll is every 10 s: three pickups in a row well under that (the timer can
    # explain at most one of them) come from the doorbell...
    worker = Worker(stack.settings(dsn, doorbell_enabled=True, poll_interval_s=10), kinds=["noop"])

    async def quick_pickups() -> None:
        for _ in range(3):
            t0 = time.monotonic()
            job = conn.execute("select public.enqueue_job('noop')").fetchone()[0]
            await wait_for(lambda j=job: _done(conn, j), timeout=5)
            assert time.monotonic() - t0 < 2.0

    async with running(worker):
        await wait_for(lambda: worker.doorbell.connected, message="doorbell subscribed")
        await wait_for(lambda: worker.doorbell.database_subscribed, message="database subscription")
        await quick_pickups()

        # ...Realtime goes away: the worker notices, and a job still runs by polling.
        realtime.stop_accepting(drop=True)
        await wait_for(lambda: not worker.doorbell.connected, message="doorbell down")
        job = conn.execute("select public.enqueue_job('noop')").fetchone()[0]
        await wait_for(lambda: _done(conn, job), timeout=15, message="job run by polling")
        _healthy, body = worker.health()
        assert body["doorbell"]["connected"] is False and body["status"] == "degraded"

        # Realtime returns: the doorbell re-subscribes by itself.
        realtime.start_accepting()
        await wait_for(
            lambda: worker.doorbell.database_subscribed, timeout=20, message="re-subscribed"
        )
        await quick_pickups()


async def test_config_changes_apply_live_and_bad_values_are_rejected(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    worker = Worker(stack.settings(dsn, doorbell_enabled=True, poll_interval_s=30), kinds=["noop"])
    async with running(worker):
        await wait_for(lambda: worker.doorbell.connected)
        assert worker.config.engagement.daily_like_cap == 200
        conn.execute(
            "update public.configs set value = value || '{\"daily_like_cap\": 7}' where key = 'engagement'"
        )
        await wait_for(lambda: worker.config.engagement.daily_like_cap == 7, timeout=5)

        # Passes the database's cheap checks, fails the full model: rejected, old value kept.
        conn.execute(
            'update public.configs set value = value || \'{"daily_like_cap": 3, "surprise": true}\''
            " where key = 'engagement'"
        )
        alert = await wait_for(
            lambda: conn.execute(
                "select message from public.alerts where dedupe_key = 'config_rejected:engagement'"
                " and resolved_at is null"
            ).fetchone(),
            timeout=5,
        )
        assert "surprise" in alert[0]
        assert worker.config.engagement.daily_like_cap == 7
        assert "engagement" in worker.health()[1]["config_rejected"]

        # A good value again: applied, alert resolved.
        conn.execute(
            "update public.configs set value = value - 'surprise' where key = 'engagement'"
        )
        await wait_for(lambda: worker.config.engagement.daily_like_cap == 3, timeout=5)
        assert conn.execute(
            "select resolved_at is not null from public.alerts where dedupe_key = 'config_rejected:engagement'"
        ).fetchone()[0]
