"""kill -9 of a worker process between X's answer and the database write.

The worker runs as a real process (`uv run chirpbase worker`). The X stand-in creates the tweet
and then holds the response, so the process is exactly between "X has the tweet" and "the
database knows"; it is killed with SIGKILL there. Once its lease is gone, a restarted worker
reconciles: still exactly one tweet on X, and the `tweets` row is written.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, USER_TWEETS
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def worker_process(
    stack: SandboxStack, dsn: str, worker_id: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        **stack.env(dsn),
        "WORKER_ID": worker_id,
        "POLL_INTERVAL_S": "0.5",
        "DOORBELL_ENABLED": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "SHUTDOWN_GRACE_S": "5",
        "X_CONNECT_TIMEOUT_S": "1",
        "X_TIMEOUT_S": "3",
        # X's timeline shows a post only after a lag: a restart quicker than that waits out
        # the consistency window before it may conclude anything. Short here, 60 s by default.
        "RECONCILE_WINDOW_S": "5",
        "LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        # Its own process group: `uv run` starts the Python worker as a child, and SIGKILL
        # cannot be forwarded, so the kill goes to the group (uv and the worker together).
        proc = subprocess.Popen(
            ["uv", "run", "--no-sync", "chirpbase", "worker", "--kinds", "post_tweet"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None, sql
    return row


def reap_now(conn: psycopg.Connection, admin_dsn: str, job_id: int) -> None:
    """The killed worker's lease would run out on its own (90 s): shorten it, then the reaper
    frees the job."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            "update public.jobs set locked_until = now() - interval '1 second' where id = %s",
            (job_id,),
        )
    assert conn.execute("select public.reap_expired_leases()").fetchone() == (1,)


@pytest.mark.timeout(90)
async def test_kill_9_between_x_and_the_database_still_ends_with_one_tweet(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str, admin_dsn: str, tmp_path: Path
) -> None:
    stack.x.drop_after_create_next(mode="hang")  # create the tweet, then hold the answer
    row_id = one(
        conn,
        "insert into public.scheduled_tweets (content) values ('survives a kill -9') returning id",
    )["id"]
    job_id = one(conn, "select job_id from public.scheduled_tweets where id = %s", row_id)["job_id"]

    first_log = tmp_path / "worker-1.log"
    with worker_process(stack, dsn, "crash-test-1", first_log) as proc:
        await wait_for(
            lambda: stack.x.posted_tweets() or proc.poll() is not None,
            timeout=30,
            message="the first worker to create the tweet on X",
        )
        assert proc.poll() is None, first_log.read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    # Killed in between: X has the tweet, the database only the intent.
    assert [t.text for t in stack.x.posted_tweets()] == ["survives a kill -9"]
    row = one(conn, "select status, tweet_id from public.scheduled_tweets where id = %s", row_id)
    assert row == {"status": "posting", "tweet_id": None}
    assert one(conn, "select count(*) as n from public.tweets")["n"] == 0
    job = one(conn, "select * from public.jobs where id = %s", job_id)
    assert (job["status"], job["locked_by"], job["attempts"]) == ("running", "crash-test-1", 1)

    reap_now(conn, admin_dsn, job_id)

    second_log = tmp_path / "worker-2.log"
    with worker_process(stack, dsn, "crash-test-2", second_log) as proc:
        await wait_for(
            lambda: (
                conn.execute(
                    "select 1 from public.scheduled_tweets where id = %s and status = 'posted'",
                    (row_id,),
                ).fetchone()
                or proc.poll() is not None
            ),
            timeout=30,
            message="the restarted worker to record the tweet",
        )
        assert proc.poll() is None, second_log.read_text()[-3000:]

    tweets = stack.x.posted_tweets()
    assert len(tweets) == 1
    # Reconciled: X was never asked to post again. (The one create request is still held by the
    # stand-in, so it is not in the finished-request log; a second one would be, 201 or 403.)
    assert stack.x.posts_created == 1
    assert stack.x.request_count(CREATE_TWEET) == 0
    assert stack.x.request_count(USER_TWEETS) >= 1
    row = one(conn, "select status, tweet_id from public.scheduled_tweets where id = %s", row_id)
    assert row == {"status": "posted", "tweet_id": tweets[0].id}
    tweet = one(conn, "select * from public.tweets")
    assert (tweet["tweet_id"], tweet["content"]) == (tweets[0].id, "survives a kill -9")
    job = one(conn, "select * from public.jobs where id = %s", job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    assert job["result"]["reconciled"] is True
    assert one(conn, "select used from public.quota_usage where resource = 'posts'")["used"] == 1
