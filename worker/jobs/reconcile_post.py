"""`reconcile_post`: settle a row whose post job ended while X may have its post.

A `post_tweet` job can end with its row still `posting`: dead after its last attempt, its lease
lost once too often (a starved machine, workers killed), cancelled while waiting to retry. An
earlier call's outcome is unknown, so the post may be on X: failing the row would be untrue if
it is there, and posting it again would post it twice. The database (migration
`jobs_settle_their_rows`) queues this job instead, and it does what the post job's next attempt
would have done first: look for the post on the account's timeline (`_reconcile.reconcile`: X's
rewriting undone, every page followed, the consistency window waited out with a snooze).

- Found: the post is recorded (`posted`), priced as X bills it; the reservation the row carried
  pays for it.
- Not there once the window has passed: X created nothing. The post's quota goes back to the
  month it was reserved in and the row fails (is cancelled, when its post job was), with the
  post job's end and this finding as the reason: one transaction, under this job's lease.

It never posts. When X cannot be read for all its attempts, the job's own end fails the row
saying that the outcome is unknown (the quota stays counted: X may have billed the post).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.billing.prices import post_operation
from worker.db import query
from worker.jobs._reconcile import media_count, reconcile, record_found
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, job_kind


class ReconcilePostPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_tweet_id: int
    post_job_id: int
    #: How the post job ended (the row ends cancelled, not failed, when it was cancelled).
    ended: Literal["dead", "failed", "cancelled", "skipped"]
    #: The post job's end, as the database put it ("post job 52 dead after 8 attempt(s): ...").
    reason: str = Field(max_length=4000)


async def _operation(ctx: JobContext, row: dict[str, Any]) -> str:
    """What X bills the post as (a reply to a post that summoned the account is cheaper)."""
    parent = row["in_reply_to_tweet_id"]
    target = (
        await ctx.services.db.fetchrow("x_reply_target", {"tweet_id": parent}) if parent else None
    )
    return post_operation(row["content"], summoned_reply=bool(target and target["summoned"]))


async def _settle_unposted(ctx: JobContext, row_id: int, outcome: str, error: str) -> str | None:
    """Refund and settle the row (SQL settle_unposted_post) under this run's lease."""
    async with ctx.leased_transaction("settling the row") as cur:
        await cur.execute(
            query("settle_unposted"), {"id": row_id, "outcome": outcome, "error": error}
        )
        settled = await cur.fetchone()
    return str(settled["status"]) if settled else None


@job_kind("reconcile_post", ReconcilePostPayload, concurrency=2, lease=timedelta(seconds=90))
async def reconcile_post(payload: ReconcilePostPayload, ctx: JobContext) -> dict[str, Any] | None:
    row = await ctx.services.db.fetchrow("get_scheduled_tweet", {"id": payload.scheduled_tweet_id})
    if row is None:
        raise GiveUp(f"scheduled_tweets row {payload.scheduled_tweet_id} does not exist")
    if row["status"] != "posting":
        return {"settled_already": row["status"]}

    found = await reconcile(ctx, row, media_count=media_count(row))
    if found:
        await record_found(ctx, row, found, await _operation(ctx, row))
        ctx.log.info(
            "reconciled: tweet {} was posted (post job {} had ended {})",
            found.tweet_id,
            payload.post_job_id,
            payload.ended,
        )
        return {"tweet_id": found.tweet_id, "reconciled": True}

    outcome = "cancelled" if payload.ended == "cancelled" else "failed"
    error = f"{payload.reason}; reconciled: the post is not on X, nothing was posted"
    settled = await _settle_unposted(ctx, row["id"], outcome, error)
    if settled is None:
        return {"skipped": "the row moved on, or a post job runs for it again (it looks first)"}
    ctx.log.info("row {} not on X: {}, quota given back", row["id"], settled)
    return {"reconciled": True, "posted": False, "status": settled}
