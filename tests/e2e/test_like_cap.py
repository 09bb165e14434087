"""The daily like cap holds under concurrency: likes are taken from an atomic counter, the way
the monthly quotas are, not counted and then acted on (which let every handler running at once
pass the check). Each worker likes one at a time, so the concurrency here is three replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from sandbox.stack import SandboxStack
from sandbox.x_api import LIKE
from tests.waiting import wait_for
from tests.workers import running
from tests.xaccess import use_enterprise
from worker.runtime.worker import Worker

CAP = 3


async def test_concurrent_likes_never_exceed_the_daily_cap(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    use_enterprise(stack.x, conn)  # likes exist on Enterprise access only
    conn.execute(
        "update public.configs set value = value || %s::jsonb where key = 'engagement'",
        (f'{{"auto_like": true, "daily_like_cap": {CAP}}}',),
    )
    fan = stack.x.add_user("many_fans")
    mentions = [stack.x.add_mention(fan.id, f"great post #{i}") for i in range(8)]
    stack.x.inject_latency(LIKE, 0.5)  # every like handler is past the check at the same time
    for m in mentions:
        conn.execute(
            "insert into public.replies (reply_id, author_id, content) values (%s, %s, %s)",
            (m.id, fan.id, m.text),
        )
    replicas = [
        Worker(stack.settings(dsn, poll_interval_s=0.3), kinds=["like_reply"]) for _ in range(3)
    ]
    async with running(replicas[0]), running(replicas[1]), running(replicas[2]):
        await wait_for(
            lambda: conn.execute(
                "select count(*) = 8 from public.jobs where kind = 'like_reply'"
                " and status in ('succeeded', 'queued') and attempts <= 1"
                " and (status = 'succeeded' or last_error is not null)"
            ).fetchone()[0],
            timeout=20,
            message="every like done or waiting",
        )
    liked_on_x = {like.tweet_id for like in stack.x.like_requests() if like.newly_liked}
    assert len(liked_on_x) == CAP
    marked = conn.execute("select count(*) from public.replies where liked").fetchone()[0]
    assert marked == CAP
    waiting = conn.execute(
        "select run_at, last_error from public.jobs where kind = 'like_reply' and status = 'queued'"
    ).fetchall()
    assert len(waiting) == 8 - CAP
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    for run_at, error in waiting:
        assert run_at >= tomorrow and f"daily like cap of {CAP}" in error
