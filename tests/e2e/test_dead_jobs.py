"""Jobs that die leave no row behind: end to end, through real workers and the stand-ins.

1. A `generate_tweet` job starved past its lease until dead, as seen on a loaded machine: a
   worker process (`LEASE_S=2`) whose OpenAI call is slower than the lease is stopped (SIGSTOP:
   no CPU, no heartbeat) until its lease runs out, reaped, continued, four times. The row ends
   `failed` with the reason, the `job_dead` alert is raised, nothing is posted, and the OpenAI
   budget holds the four calls that were cut off and nothing more.
2. A `post_tweet` job that dies with its row `posting` (the outcome of its call unknown) hands the
   row to `reconcile_post`: when X had created the post, it is found and recorded, once; when X
   had created nothing, the row fails with the reason and its post's quota is refunded.
"""

from __future__ import annotations

import contextlib
import json
import signal
from typing import Any

import psycopg
import pytest

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET
from tests.e2e.posting import one, quota_used, row_of, rows, schedule
from tests.processes import WorkerProcess
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker

TOPIC = "why queues need leases"


def _job(conn: psycopg.Connection, job_id: int) -> dict[str, Any]:
    return one(conn, "select * from public.jobs where id = %s", job_id)


def _lease_ran_out(conn: psycopg.Connection, job_id: int) -> bool:
    return bool(
        one(conn, "select locked_until < now() as out from public.jobs where id = %s", job_id)[
            "out"
        ]
    )


def _logged(worker: WorkerProcess, prefix: str) -> int:
    """How many of the worker's JSON log records have a message starting with `prefix`."""
    count = 0
    for line in worker.output().splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            count += json.loads(line)["record"]["message"].startswith(prefix)
    return count


def _running(worker: WorkerProcess) -> bool:
    """True while the worker process runs; a worker that exited fails the test at once."""
    assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
    return True


@pytest.mark.timeout(150)
async def test_a_generation_starved_past_its_lease_until_dead_fails_its_row(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.openai.set_latency(chat=60.0)  # slower than the lease: each call is out when it starves
    row_id = int(
        one(conn, "insert into public.scheduled_tweets (topic) values (%s) returning id", TOPIC)[
            "id"
        ]
    )
    job_id = int(row_of(conn, row_id)["job_id"])
    max_attempts = int(_job(conn, job_id)["max_attempts"])
    assert max_attempts == 4

    worker = WorkerProcess(
        {
            **stack.env(dsn),
            "LEASE_S": "2",
            "POLL_INTERVAL_S": "0.3",
            "DOORBELL_ENABLED": "false",
            "SHUTDOWN_GRACE_S": "3",
            "X_CONNECT_TIMEOUT_S": "1",
            "X_TIMEOUT_S": "1",
            "LOG_LEVEL": "INFO",
        },
        name="starved",
        kinds="generate_tweet",
    ).start()
    reserved_per_call: float | None = None
    try:
        for attempt in range(1, max_attempts + 1):
            await wait_for(
                lambda attempt=attempt: (
                    _running(worker)
                    and len(stack.openai.requests_for("chat")) >= attempt
                    and _job(conn, job_id)["status"] == "running"
                    and _job(conn, job_id)["attempts"] == attempt
                ),
                timeout=60 if attempt == 1 else 20,
                message=f"attempt {attempt} waiting on OpenAI",
            )
            if reserved_per_call is None:
                reserved_per_call = quota_used(conn, "openai_usd")
                assert reserved_per_call > 0  # the call's estimate, held before it went out
            assert row_of(conn, row_id)["status"] == "generating"
            worker.signal(signal.SIGSTOP)  # starved: no CPU, no heartbeat
            try:
                await wait_for(
                    lambda: _lease_ran_out(conn, job_id), timeout=10, message="the 2 s lease to end"
                )
                reaped = one(conn, "select public.reap_expired_leases() as n")["n"]
                assert reaped == 1
            finally:
                worker.signal(signal.SIGCONT)
        # The last stale run is cancelled when the worker's heartbeat finds its lease gone.
        await wait_for(
            lambda: _logged(worker, "cancelled: the lease was lost") == max_attempts,
            timeout=20,
            message="every starved run cancelled by its worker",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log (tail)\n{worker.output()[-4000:]}") from None
    finally:
        worker.signal(signal.SIGTERM)
        await wait_for(
            lambda: worker.proc is not None and worker.proc.poll() is not None, timeout=30
        )

    job = _job(conn, job_id)
    assert (job["status"], job["attempts"]) == ("dead", max_attempts)
    row = row_of(conn, row_id)
    assert row["status"] == "failed"
    assert row["error"] == (
        f"generation job {job_id} dead after 4 attempt(s): lease expired: worker starved"
        " stopped heartbeating"
    )
    assert row["content"] is None
    [alert] = rows(
        conn,
        "select level, message from public.alerts where dedupe_key = 'job_dead:generate_tweet'"
        " and resolved_at is null",
    )
    assert alert["level"] == "critical"
    assert f"generate_tweet job {job_id} is dead after 4 attempt(s)" in alert["message"]
    assert rows(conn, "select id from public.jobs where kind = 'post_tweet'") == []
    assert stack.x.posted_tweets() == []
    # Four calls went out and none was answered: each was cut off by its worker, and OpenAI may
    # bill a request whose client went away, so each keeps its hold (as X's reads do). Nothing
    # else is held: the budget is exactly four calls' estimates.
    chats = stack.openai.requests_for("chat")
    assert len(chats) == max_attempts and not any(r.status for r in chats)
    assert reserved_per_call is not None
    assert quota_used(conn, "openai_usd") == pytest.approx(max_attempts * reserved_per_call)
    assert one(conn, "select count(*) as n from public.stranded_scheduled_tweets()")["n"] == 0


def _post_worker(stack: SandboxStack, dsn: str) -> Worker:
    return Worker(
        stack.settings(dsn, poll_interval_s=0.3, reconcile_window_s=3.0),
        kinds=["post_tweet", "reconcile_post"],
    )


def _last_chance_post(conn: psycopg.Connection, content: str) -> tuple[int, int]:
    """A post whose job has one attempt: its first unknown outcome is its end."""
    row_id = schedule(conn, content)
    job_id = int(row_of(conn, row_id)["job_id"])
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    return row_id, job_id


@pytest.mark.timeout(90)
async def test_a_post_dead_after_x_created_it_is_found_and_recorded_once(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.drop_after_create_next(mode="reset")  # X creates the post; its answer is lost
    row_id, job_id = _last_chance_post(conn, "created, then the answer was lost")
    async with running(_post_worker(stack, dsn)):
        row = await wait_for(
            lambda: (r := row_of(conn, row_id))["status"] in ("posted", "failed") and r,
            timeout=45,
            message="the row reconciled",
        )
    [tweet] = stack.x.posted_tweets()
    assert (row["status"], row["tweet_id"], row["error"]) == ("posted", tweet.id, None)
    assert stack.x.request_count(CREATE_TWEET) == 1  # never sent again
    assert _job(conn, job_id)["status"] == "dead"
    reconciler = _job(conn, int(row["job_id"]))
    assert reconciler["kind"] == "reconcile_post" and reconciler["status"] == "succeeded"
    assert reconciler["result"] == {"tweet_id": tweet.id, "reconciled": True}
    assert (
        one(conn, "select count(*) as n from public.tweets where tweet_id = %s", tweet.id)["n"] == 1
    )
    assert quota_used(conn) == 1  # the post X created (and bills), counted once


@pytest.mark.timeout(90)
async def test_a_post_dead_when_x_created_nothing_fails_with_its_quota_refunded(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    stack.x.fail_next(CREATE_TWEET, 1, status=503)  # a 5xx: the outcome is unknown to the worker
    row_id, job_id = _last_chance_post(conn, "never created on X")
    async with running(_post_worker(stack, dsn)):
        await wait_for(
            lambda: quota_used(conn) == 1 and row_of(conn, row_id)["status"] == "posting",
            timeout=20,
            message="the post reserved and sent",
        )
        row = await wait_for(
            lambda: (r := row_of(conn, row_id))["status"] in ("posted", "failed") and r,
            timeout=45,
            message="the row reconciled",
        )
    assert stack.x.posted_tweets() == [] and stack.x.request_count(CREATE_TWEET) == 1
    assert row["status"] == "failed"
    assert row["error"] == (
        f"post job {job_id} dead after 1 attempt(s): X call outcome unknown (XServerError);"
        " will reconcile; reconciled: the post is not on X, nothing was posted"
    )
    assert quota_used(conn) == 0  # refunded: X created nothing
    reconciler = _job(conn, int(row["job_id"]))
    assert (reconciler["kind"], reconciler["status"]) == ("reconcile_post", "succeeded")
    assert reconciler["result"] == {"reconciled": True, "posted": False, "status": "failed"}
    assert (
        one(
            conn,
            "select count(*) as n from public.alerts where dedupe_key = 'job_dead:post_tweet'",
        )["n"]
        == 1
    )
