"""`poll_mentions`: fetch mentions since the stored since_id and ingest replies idempotently.

Each new `replies` row gets its `like_reply` job from a trigger, so polling, webhooks and manual
inserts all lead to the same like. The since_id cursor only moves forward, in the database.

X pages newest first. When more mentions arrived than one poll reads (`max_pages`), the cursor
still moves to the newest, and the gap between the old cursor and the oldest mention read is
handed to a backfill job (the same kind, with `since_id`/`until_id` in its payload) that walks
it on, so a burst of mentions is never skipped.

Reads are owned reads ($0.001 a mention: `{id}` is the account itself). The poll never asks X
for more posts than the monthly read cap leaves: the reservation shrinks to what remains (one
page of 5 at least, X's smallest `max_results`), and the poll asks for that many.

Authors are named without X's `author_id` expansion, which would bill a User: Read ($0.010)
for every author of every poll, every day: a row gets the username another row of the same
author already has (a webhook event carries it), and only authors nobody has named yet are
looked up, once (`GET /2/users`, 100 a request). Naming is best effort: a refusal leaves the
username empty for the next poll to fill, and never fails the poll.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.x import (
    XError,
)
from worker.conversation.mentions import mention_to_reply_row
from worker.jobs._x import (
    READ_FAILURES,
    bot_user_id,
    budgeted,
    read_failed,
    record_usage,
    reserved_reads,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import Snooze, job_kind

EMPTY_PAGES_RETRY = timedelta(seconds=5)


class PollMentionsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_results: int = Field(default=100, ge=5, le=100)
    max_pages: int = Field(default=5, ge=1, le=50)
    # Backfill of a gap left by an earlier poll: mentions in (since_id, until_id).
    since_id: str | None = Field(default=None, pattern=r"^\d{1,25}$")
    until_id: str | None = Field(default=None, pattern=r"^\d{1,25}$")


# X's smallest page for GET /2/users/:id/mentions (max_results 5..100).
MIN_PAGE = 5


def fit_pages(granted: int, max_results: int, max_pages: int) -> tuple[int, int]:
    """(posts per page, pages) asking X for no more than `granted` posts in all."""
    per_page = max(MIN_PAGE, min(max_results, granted))
    return per_page, max(1, min(max_pages, granted // per_page))


@job_kind("poll_mentions", PollMentionsPayload, concurrency=1, lease=timedelta(seconds=60))
async def poll_mentions(payload: PollMentionsPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    user_id = await bot_user_id(ctx)
    backfill = payload.until_id is not None
    if backfill:
        since_id = payload.since_id
    else:
        account = await db.fetchrow("get_account")
        since_id = account["mentions_since_id"] if account else None

    wanted = payload.max_results * payload.max_pages
    price = ctx.services.config.pricing.x.owned_read
    try:
        async with reserved_reads(
            ctx, wanted, requests=payload.max_pages, minimum=MIN_PAGE
        ) as reads:
            per_page, pages = fit_pages(reads.amount, payload.max_results, payload.max_pages)
            async with budgeted(ctx, per_page * pages * price) as spend:
                page = await ctx.services.x.mentions(
                    user_id,
                    since_id=since_id,
                    until_id=payload.until_id,
                    max_results=per_page,
                    max_pages=pages,
                )
                reads.served = len(page.tweets)
                await record_usage(
                    ctx,
                    "mentions",
                    "owned_read",
                    calls=page.requests,
                    post_ids=[t.id for t in page.tweets],
                    spend=spend,
                )
    except READ_FAILURES as exc:
        raise await read_failed(
            ctx, exc, endpoint="mentions", waiting="mention polls", what="mentions fetch"
        ) from None
    if not page.complete and not page.tweets:
        # X served only empty pages that still promised more: nothing to move the cursor or a
        # backfill by. Look again shortly (no attempt spent); the range is unchanged.
        raise Snooze(
            datetime.now(UTC) + EMPTY_PAGES_RETRY, "X served empty pages with more to come"
        )

    rows = [
        row
        for tweet in page.tweets
        if (row := mention_to_reply_row(tweet, bot_user_id=user_id, source="poll")) is not None
    ]

    inserted = []
    named = 0
    if rows:
        inserted = [r["reply_id"] for r in await db.fetch("insert_replies", {"rows": Jsonb(rows)})]
        named = await name_authors(ctx, [r["author_id"] for r in rows])
    if page.newest_id and not backfill:
        await db.execute("advance_since_id", {"since_id": page.newest_id})
    result: dict[str, Any] = {
        "asked": per_page * pages,
        "fetched": len(page.tweets),
        "inserted": len(inserted),
        "authors_looked_up": named,
        "since_id": page.newest_id,
    }
    if not page.complete and page.tweets and since_id is not None:
        # Older mentions than the ones read remain above the previous cursor: walk them next.
        # (Without a cursor, on the very first poll, older mentions are history, not a gap.)
        oldest = str(min(int(t.id) for t in page.tweets))
        result["backfill_job"] = await ctx.services.queue.enqueue(
            "poll_mentions",
            {
                "max_results": payload.max_results,
                "max_pages": payload.max_pages,
                "since_id": since_id,
                "until_id": oldest,
            },
            dedupe_key=f"poll_mentions:backfill:{since_id or 0}:{oldest}",
        )
    return result


async def name_authors(ctx: JobContext, author_ids: list[str]) -> int:
    """Give the authors' rows their usernames: from rows that know them, else from X once.
    Returns how many authors were looked up on X."""
    db = ctx.services.db
    unknown = [r["author_id"] for r in await db.fetch("name_authors", {"ids": author_ids})]
    if not unknown:
        return 0
    price = ctx.services.config.pricing.x.user_read
    try:
        async with budgeted(ctx, len(unknown) * price) as spend:
            users = await ctx.services.x.users(unknown)
            await record_usage(
                ctx,
                "users_lookup",
                "user_read",
                calls=(len(unknown) + 99) // 100,
                user_ids=[u.id for u in users],
                spend=spend,
            )
    except (XError, Snooze) as exc:  # usernames are for people reading rows: never worth a retry
        ctx.log.info("authors left unnamed for now ({})", type(exc).__name__)
        return 0
    await db.execute(
        "set_author_usernames",
        {"users": Jsonb([{"author_id": u.id, "username": u.username} for u in users])},
    )
    return len(unknown)
