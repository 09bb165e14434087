"""reconcile_usage: the local read counter follows X's own usage endpoint when X counts more."""

from __future__ import annotations

import psycopg

from sandbox.stack import SandboxStack
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker


def _reads(conn: psycopg.Connection) -> tuple[float, float | None]:
    row = conn.execute(
        "select used, x_reported from public.quota_usage"
        " where resource = 'reads' and month = public.current_month()"
    ).fetchone()
    return (float(row[0]), None if row[1] is None else float(row[1])) if row else (0.0, None)


async def test_x_count_wins_when_higher_and_a_large_gap_alerts(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    conn.execute("select public.consume_quota('reads', 10)")
    stack.x.posts_read = 25  # X counted reads chirpbase did not (say, another app in the project)
    job = conn.execute("select public.enqueue_job('reconcile_usage')").fetchone()[0]
    async with running(Worker(stack.settings(dsn), kinds=["reconcile_usage"])):
        await wait_for(
            lambda: conn.execute(
                "select status = 'succeeded' from public.jobs where id = %s", (job,)
            ).fetchone()[0],
            timeout=10,
        )
    assert _reads(conn) == (25.0, 25.0)
    assert (
        conn.execute(
            "select count(*) from public.alerts where dedupe_key = 'usage_drift:reads' and resolved_at is null"
        ).fetchone()[0]
        == 1
    )

    # X counting less than chirpbase leaves the (conservative) local count alone.
    stack.x.posts_read = 20
    job = conn.execute(
        "select public.enqueue_job('reconcile_usage', '{}', null, 0, 'second')"
    ).fetchone()[0]
    async with running(Worker(stack.settings(dsn), kinds=["reconcile_usage"])):
        await wait_for(
            lambda: conn.execute(
                "select status = 'succeeded' from public.jobs where id = %s", (job,)
            ).fetchone()[0],
            timeout=10,
        )
    assert _reads(conn) == (25.0, 20.0)
