"""`collect_stats`: engagement of recent tweets, one stats row per tweet, read the cheapest way.

Two ways to read the account's own posts, priced from configs.pricing.x
(docs.x.com/x-api/getting-started/pricing):

* the owned timeline, `GET /2/users/:id/tweets` with `public_metrics`: an owned read ($0.001)
  for every post on it back to the oldest one wanted, including ones not wanted;
* lookups, `GET /2/tweets?ids=...` (100 ids a request): a post read ($0.005) per post wanted.

The cheaper one is used (the timeline, unless the account posts far more elsewhere than through
chirpbase), and the choice and both estimates go in the job's result (shown by `chirpbase
status`). Posts the timeline did not show (it lags behind a post just created, or the walk
stopped at its page budget) are looked up. X bills a post once per UTC day whichever endpoint
returned it, so hourly collection costs what one daily collection does.

Poll results come with the same reads (`expansions=attachments.poll_ids` and `poll.fields`,
x-api/fundamentals/data-dictionary.mdx "Poll") and replace the `polls` row of each poll.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from worker.billing.prices import cheapest_stats_read
from worker.clients.x import (
    TweetMetrics,
)
from worker.jobs._x import (
    READ_FAILURES,
    bot_user_id,
    budgeted,
    read_failed,
    record_usage,
    reserved_reads,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import job_kind

# The most pages walked: X serves a user's 3,200 most recent posts; the rest is looked up.
TIMELINE_MAX_PAGES = 32


class CollectStatsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=30, ge=1, le=365)


@job_kind("collect_stats", CollectStatsPayload, concurrency=1, lease=timedelta(seconds=120))
async def collect_stats(payload: CollectStatsPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    wanted = await db.fetch("tweets_for_stats", {"days": payload.days})
    ids = [r["tweet_id"] for r in wanted]
    if not ids:
        return {"tweets": 0}
    oldest = min(r["posted_at"] for r in wanted)
    prices = ctx.services.config.pricing.x
    on_timeline = int(await db.fetchval("own_posts_since", {"since": oldest}) or len(ids))
    source, estimates = cheapest_stats_read(prices, wanted=len(ids), timeline_posts=on_timeline)
    result: dict[str, Any] = {
        "source": source,
        "estimated_usd": {k: round(v, 6) for k, v in estimates.items()},
    }
    found: dict[str, TweetMetrics] = {}
    try:
        if source == "owned_timeline":
            timeline = await _read_timeline(ctx, oldest, on_timeline)
            found.update((m.id, m) for m in timeline["metrics"] if m.id in set(ids))
            result["timeline_posts"] = timeline["served"]
            result["timeline_pages"] = timeline["pages"]
        rest = [i for i in ids if i not in found]
        if rest:
            for m in await _look_up(ctx, rest):
                found[m.id] = m
            result["looked_up"] = len(rest)
        result["requests"] = result.get("timeline_pages", 0) + (len(rest) + 99) // 100
    except READ_FAILURES as exc:
        endpoint = "users_tweets" if source == "owned_timeline" else "tweets_lookup"
        raise await read_failed(
            ctx,
            exc,
            endpoint=getattr(exc, "endpoint", None) or endpoint,
            waiting="stats collections",
            what="stats read",
        ) from None

    rows = [
        {
            "tweet_id": m.id,
            "likes": m.likes,
            "retweets": m.retweets,
            "replies": m.replies,
            "impressions": m.impressions,
            "quotes": m.quotes,
            "bookmarks": m.bookmarks,
        }
        for m in found.values()
    ]
    collected_at = datetime.now(UTC)
    if rows:
        await db.execute("insert_stats", {"rows": Jsonb(rows), "collected_at": collected_at})
    polls = _poll_rows(found.values())
    if polls:
        await db.execute("upsert_polls", {"rows": Jsonb(polls), "collected_at": collected_at})
        result["polls"] = len(polls)
    missing = sorted(set(ids) - set(found))
    return {**result, "tweets": len(rows), "missing": missing[:20]}


def _poll_rows(metrics: Iterable[TweetMetrics]) -> list[dict[str, Any]]:
    """Poll results that came with the same reads (expansions=attachments.poll_ids): no
    request and no read of their own."""
    return [
        {
            "poll_id": m.poll.id,
            "tweet_id": m.id,
            "options": m.poll.to_json(),
            "duration_minutes": m.poll.duration_minutes,
            "end_datetime": m.poll.end_datetime.isoformat() if m.poll.end_datetime else None,
            "voting_status": m.poll.voting_status,
            "total_votes": m.poll.total_votes,
        }
        for m in metrics
        if m.poll is not None
    ]


async def _read_timeline(ctx: JobContext, oldest: datetime, expected: int) -> dict[str, Any]:
    """The account's posts back to `oldest` from its own timeline (owned reads).

    Pages hold as many posts as chirpbase posted since `oldest` (X's smallest page is 5): every
    post served is billed, so asking for more would bill posts nobody wants. Posts the account
    made elsewhere push wanted ones off the pages; those are looked up. X's pages may come short
    or empty with more to follow (each post is billed, not each request), so up to twice the
    pages are followed within the same reservation of posts."""
    user_id = await bot_user_id(ctx)
    per_page = max(5, min(100, expected))
    pages = min(TIMELINE_MAX_PAGES, expected // 100 + 1)
    price = ctx.services.config.pricing.x.owned_read
    async with (
        reserved_reads(ctx, per_page * pages, requests=pages) as reads,
        budgeted(ctx, per_page * pages * price) as spend,
    ):
        timeline = await ctx.services.x.own_timeline(
            user_id,
            oldest - timedelta(seconds=1),
            max_results=per_page,
            max_pages=2 * pages,
            max_posts=per_page * pages,
        )
        reads.served = timeline.served
        await record_usage(
            ctx,
            "users_tweets",
            "owned_read",
            calls=timeline.pages,
            post_ids=timeline.served_ids,
            spend=spend,
        )
    return {"metrics": timeline.metrics, "served": timeline.served, "pages": timeline.pages}


async def _look_up(ctx: JobContext, ids: list[str]) -> list[TweetMetrics]:
    requests = (len(ids) + 99) // 100
    price = ctx.services.config.pricing.x.post_read
    async with (
        reserved_reads(ctx, len(ids), requests=requests) as reads,
        budgeted(ctx, len(ids) * price) as spend,
    ):
        metrics = await ctx.services.x.lookup_tweets(ids)
        reads.served = len(metrics)
        await record_usage(
            ctx,
            "tweets_lookup",
            "post_read",
            calls=requests,
            post_ids=[m.id for m in metrics],
            spend=spend,
        )
    return list(metrics)
