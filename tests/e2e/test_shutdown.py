"""SIGTERM while a post is on its way: its job is never handed back with the post in flight.

Handing a job back while its `POST /2/tweets` is still running (in tweepy's thread) leaves a
post X may create after the release, with the row `posting`, the attempt refunded and nobody
waiting for the answer. The worker's grace period covers a whole call to X; a post that could
not end within what is left of it is not sent at all (the job goes back, untouched).
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from sandbox.stack import SandboxStack
from sandbox.x_api import CREATE_TWEET, MEDIA_UPLOAD
from tests.e2e.posting import job_of, one, quota_used, row_of, stored_image
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def test_a_post_that_could_not_end_within_the_grace_is_not_sent_and_the_job_goes_back(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    settings = stack.settings(
        dsn,
        poll_interval_s=0.3,
        shutdown_grace_s=2.0,
        x_connect_timeout_s=0.5,
        x_timeout_s=1.5,
    )
    path, url = await stored_image(stack, settings)
    stack.x.inject_latency(MEDIA_UPLOAD, 1.4)  # the upload ends late in the grace period
    stack.x.inject_latency(CREATE_TWEET, 1.2)  # and the post would end after it
    with conn.transaction():
        row_id = one(
            conn,
            "insert into public.scheduled_tweets (content) values ('sent whole or not at all')"
            " returning id",
        )["id"]
        conn.execute(
            "update public.scheduled_tweets set image_path = %s, image_url = %s where id = %s",
            (path, url, row_id),
        )
    worker = Worker(settings, kinds=["post_tweet"])
    async with running(worker):
        await wait_for(
            lambda: stack.x.in_flight(MEDIA_UPLOAD) == 1, timeout=10, message="uploading"
        )
        worker.stop()  # SIGTERM
        await wait_for(lambda: worker.loop.running_count == 0, timeout=10, message="drained")
    # No post in flight remains: whatever X holds, the database knows.
    await wait_for(lambda: stack.x.in_flight() == 0, timeout=5, message="X idle")
    row = row_of(conn, row_id)
    posted = stack.x.posted_tweets()
    job = job_of(conn, row_id)
    quota = quota_used(conn)
    if posted:  # it went out: it must be recorded
        assert row["status"] == "posted" and row["tweet_id"] == posted[0].id
        assert quota == 1
    else:  # it did not: the job is back in the queue, untouched, the row ready again
        assert stack.x.request_count(CREATE_TWEET) == 0
        assert (row["status"], row["tweet_id"]) == ("pending", None)
        assert (job["status"], job["attempts"]) == ("queued", 0)
        assert quota == 0


def test_the_container_stop_grace_covers_the_shutdown_grace() -> None:
    """docker compose / the image give the worker at least SHUTDOWN_GRACE_S before SIGKILL,
    and SIGTERM is the signal it stops on."""
    default_grace = Settings.model_fields["shutdown_grace_s"].default
    compose = (ROOT / "docker-compose.yml").read_text()
    match = re.search(r"^\s+stop_grace_period: (\d+)s$", compose, re.MULTILINE)
    assert match, "docker-compose.yml sets no stop_grace_period"
    assert int(match[1]) >= default_grace + 5  # room for the release and the exit
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.MULTILINE)
    fields = Settings.model_fields
    call_s = fields["x_connect_timeout_s"].default + fields["x_timeout_s"].default
    assert default_grace >= call_s
