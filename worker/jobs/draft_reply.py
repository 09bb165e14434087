"""`draft_reply`: write a reply draft for a post that summoned the account.

One job per `replies` row, enqueued by its insert trigger when the cheap guards pass (dedupe key
`draft_reply:<reply id>`: the same mention delivered by webhook and found by polling is one row,
one job, one draft). Then:

1. The guards again, all of them, on facts read now (worker/conversation/policy.py): on, not the
   account itself, not skipped, not opted out, summoned, the language, one draft per post, the
   reply window, one per conversation turn, the daily caps. A refusal ends the job `skipped`
   with the reason. Quiet hours snooze it to their end.
2. When the operator set a follower or account-age bar: the author, from `x_users` when X
   described them less than a day ago, else one `GET /2/users` (a User: Read, priced).
3. The conversation: the post answered, the post it replies to and the conversation's first
   post. What chirpbase holds is free (`tweets`, `replies`); the rest is one `GET /2/tweets`
   (a Posts: Read each, priced), best effort: a refusal from X leaves that context out.
4. The text: OpenAI on the persona (structured output), checked like generated tweets (X's
   weighted length, banned words, no URL unless allowed, moderation) and against the account's
   recent replies (pg_trgm); a failed check asks again naming it, up to `max_attempts`.
5. `record_reply_draft`: the guards once more under a lock, then the row (`awaiting_approval`,
   `expires_at`), or approved at once when the operator recorded X's approval and set
   `approval: auto`. A stale or duplicate run finds the draft there and stores nothing.

Every billed call is held in the budget before it is made and recorded by operation after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from worker.clients.ai import (
    AIAuthError,
    AIBadRequest,
    AIInvalidOutput,
    AIQuotaExhausted,
    AIRateLimited,
    AIRefusal,
    AIUnavailable,
)
from worker.clients.x import (
    XError,
    XUser,
)
from worker.content.generation import Draft, Rejection, check_draft, flagged, invalid_output
from worker.conversation.drafting import (
    GeneratedReply,
    Post,
    Thread,
    clean_reply,
    reply_system_prompt,
    reply_user_prompt,
    too_similar,
)
from worker.conversation.policy import ReplyFacts, author_refusal, quiet_until, refusal
from worker.jobs._openai import (
    CREDIT_RECHECK,
    BudgetReached,
    ChecksExhausted,
    OpenAISpend,
    text_estimate,
)
from worker.jobs._x import (
    CAP_RECHECK,
    READ_FAILURES,
    alert,
    bot_user_id,
    budgeted,
    next_month_start,
    read_failed,
    record_usage,
    reserved_reads,
)
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, RetryLater, Skip, Snooze, job_kind

# A reply is short: the reservation for its completion.
_REPLY_OUTPUT_TOKENS = 200


class DraftReplyPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply_id: str = Field(pattern=r"^\d{1,25}$")


@job_kind("draft_reply", DraftReplyPayload, concurrency=16, lease=timedelta(seconds=120))
async def draft_reply(payload: DraftReplyPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    conv = ctx.services.config.conversation
    await bot_user_id(ctx)  # the own-post guard needs it (stored after the first lookup)
    row = await db.fetchrow("reply_draft_facts", {"reply_id": payload.reply_id})
    if row is None:
        raise GiveUp(f"post {payload.reply_id} is not in replies")
    facts = ReplyFacts.from_row(row)
    now = datetime.now(UTC)
    why = refusal(facts, conv, now)
    if why is not None:
        raise Skip(why, {"reply_id": payload.reply_id})
    until = quiet_until(conv.quiet_hours, now)
    if until is not None:
        raise Snooze(
            until, f"quiet hours (configs.conversation.quiet_hours) until {until:%H:%M} UTC"
        )
    author = await _author(ctx, facts)
    why = author_refusal(author, conv, now)
    if why is not None:
        raise Skip(why, {"reply_id": payload.reply_id, "author_id": facts.author_id})

    thread = await _thread(ctx, row)
    spend = OpenAISpend(ctx)
    writer = ReplyWriter(ctx, thread, spend)
    try:
        text = await writer.write()
    except BudgetReached as exc:
        raise Snooze(min(next_month_start(), now + CAP_RECHECK), str(exc)) from None
    except ChecksExhausted as exc:
        raise GiveUp(f"no reply drafted: {exc}") from None
    except AIRefusal as exc:
        raise GiveUp(f"OpenAI refused to write a reply: {exc.refusal}") from None
    except (AIRateLimited, AIUnavailable) as exc:
        retry_after = getattr(exc, "retry_after", None)
        raise RetryLater(
            str(exc), retry_in=timedelta(seconds=float(retry_after)) if retry_after else None
        ) from None
    except AIQuotaExhausted as exc:
        await alert(
            ctx,
            "critical",
            "openai_quota_exhausted",
            "openai_quota_exhausted",
            f"OpenAI says the account is out of credit: {exc}",
        )
        raise Snooze(now + CREDIT_RECHECK, "OpenAI account out of credit") from None
    except AIAuthError as exc:
        await alert(
            ctx, "critical", "openai_auth", "openai_auth", f"OpenAI rejected the key: {exc}"
        )
        raise RetryLater(str(exc), retry_in=timedelta(minutes=10)) from None
    except AIBadRequest as exc:
        raise GiveUp(
            f"OpenAI refused the request (check configs.generation.text_model): {exc}"
        ) from None

    stored = await db.fetchrow(
        "record_reply_draft",
        {
            "reply_id": payload.reply_id,
            "content": text,
            "context": Jsonb(thread.to_json()),
            "drafts": writer.drafts,
            "job_id": ctx.job.id,
        },
    )
    if stored is None or stored["refusal"]:
        # The guards changed their mind while the text was written (an opt-out, a cap, a draft
        # for the same turn that won the race): nothing is stored.
        reason = stored["refusal"] if stored else "not stored"
        raise Skip(reason, {"reply_id": payload.reply_id, "cost_usd": round(spend.total_usd, 6)})
    seconds = round((datetime.now(UTC) - now).total_seconds(), 3)
    ctx.log.info(
        "reply draft {} for post {} ({}, {} draft(s), {}s)",
        stored["draft_id"],
        payload.reply_id,
        stored["status"],
        writer.drafts,
        seconds,
    )
    return {
        "draft_id": stored["draft_id"],
        "status": stored["status"],
        "expires_at": stored["expires_at"].isoformat(),
        "drafts": writer.drafts,
        "cost_usd": round(spend.total_usd, 6),
        "seconds": seconds,
    }


# -- the author -----------------------------------------------------------------------------------


async def _author(ctx: JobContext, facts: ReplyFacts) -> XUser | None:
    """What X says about the author, when a bar is set (None when not needed or not known)."""
    conv = ctx.services.config.conversation
    if conv.min_author_followers <= 0 and conv.min_author_account_age_days <= 0:
        return None
    db = ctx.services.db
    cached = await db.fetchrow("fresh_x_user", {"user_id": facts.author_id})
    if cached is not None:
        return XUser(
            id=cached["user_id"],
            username=cached["username"] or "",
            name="",
            created_at=cached["created_at"],
            followers_count=cached["followers_count"],
        )
    price = ctx.services.config.pricing.x.user_read
    try:
        async with budgeted(ctx, price) as spend:
            users = await ctx.services.x.users([facts.author_id], details=True)
            await record_usage(
                ctx, "users_lookup", "user_read", user_ids=[u.id for u in users], spend=spend
            )
    except READ_FAILURES as exc:
        raise await read_failed(
            ctx, exc, endpoint="users_lookup", waiting="reply drafts", what="author lookup"
        ) from None
    user = next((u for u in users if u.id == facts.author_id), None)
    if user is not None:
        await db.execute(
            "store_x_user",
            {
                "user_id": user.id,
                "username": user.username or None,
                "created_at": user.created_at,
                "followers_count": user.followers_count,
            },
        )
    return user


# -- the conversation -----------------------------------------------------------------------------


async def _thread(ctx: JobContext, row: dict[str, Any]) -> Thread:
    """The post answered, the post it replies to and the conversation's first post."""
    reply_id = row["reply_id"]
    parent_id = row["original_tweet_id"]
    root_id = row["conversation_id"]
    if root_id in (reply_id, parent_id):
        root_id = None
    wanted = [i for i in (parent_id, root_id) if i]
    posts: dict[str, Post] = {}
    if wanted:
        db = ctx.services.db
        for known in await db.fetch("conversation_posts", {"ids": wanted}):
            posts[known["id"]] = Post(
                known["id"],
                known["text"],
                author=_handle(known["author_username"]),
                ours=known["ours"],
            )
        missing = [i for i in wanted if i not in posts]
        if missing:
            posts.update(await _fetch_posts(ctx, missing))
    return Thread(
        answering=Post(reply_id, row["content"], author=_handle(row["author_username"])),
        parent=posts.get(parent_id) if parent_id else None,
        root=posts.get(root_id) if root_id else None,
    )


def _handle(username: str | None) -> str | None:
    return f"@{username}" if username else None


async def _fetch_posts(ctx: JobContext, ids: list[str]) -> dict[str, Post]:
    """The posts chirpbase does not hold, from X (Posts: Read, $0.005 each). Best effort: X's
    refusals leave them out of the prompt; quota and budget waits stand."""
    me = await bot_user_id(ctx)
    price = ctx.services.config.pricing.x.post_read
    try:
        async with reserved_reads(ctx, len(ids)) as reads, budgeted(ctx, len(ids) * price) as spend:
            found = await ctx.services.x.posts(ids)
            reads.served = len(found)
            await record_usage(
                ctx, "tweets_lookup", "post_read", post_ids=[t.id for t in found], spend=spend
            )
    except XError as exc:
        ctx.log.info("conversation context left out ({})", type(exc).__name__)
        return {}
    names = {
        r["author_id"]: r["author_username"]
        for r in await ctx.services.db.fetch(
            "author_usernames", {"ids": [t.author_id for t in found if t.author_id]}
        )
    }
    return {
        t.id: Post(
            t.id,
            t.note_text if t.note_text is not None else t.text,
            author=_handle(names.get(t.author_id or "")),
            ours=t.author_id == me,
        )
        for t in found
    }


# -- the text -------------------------------------------------------------------------------------


class ReplyWriter:
    """The text of one reply: draft, check, ask again naming the failure."""

    def __init__(self, ctx: JobContext, thread: Thread, spend: OpenAISpend):
        self.ctx = ctx
        self.thread = thread
        self.spend = spend
        self.conv = ctx.services.config.conversation
        self.generation = ctx.services.config.generation
        self.system = reply_system_prompt(
            ctx.services.config.persona, self.generation, self.conv.languages
        )
        self.drafts = 0

    async def write(self) -> str:
        recent = [r["content"] for r in await self._recent("")]
        feedback: Rejection | None = None
        for attempt in range(1, self.conv.max_attempts + 1):
            user = reply_user_prompt(self.thread, recent, feedback=feedback)
            model = self.generation.text_model
            reserved = await self.spend.reserve(
                text_estimate(
                    self.ctx, model, self.system, user, output_tokens=_REPLY_OUTPUT_TOKENS
                )
            )
            self.drafts = attempt
            try:
                async with self.spend.charge("openai:chat", reserved) as bill:
                    output, bill.usage = await self.ctx.services.ai.generate_tweet_text(
                        self.system, user, model, GeneratedReply
                    )
            except AIInvalidOutput as exc:
                feedback = invalid_output(exc.reason)
                continue
            text = clean_reply(output.text)
            feedback = await self._check(text)
            if feedback is None:
                return text
            self.ctx.log.info(
                "reply draft {} rejected by the {} check: {}",
                attempt,
                feedback.check,
                feedback.reason,
            )
        assert feedback is not None
        raise ChecksExhausted(self.conv.max_attempts, feedback)

    async def _recent(self, text: str) -> list[dict[str, Any]]:
        if self.conv.recent_window <= 0:
            return []
        return await self.ctx.services.db.fetch(
            "recent_reply_texts",
            {"reply_id": self.thread.answering.id, "text": text, "limit": self.conv.recent_window},
        )

    async def _check(self, text: str) -> Rejection | None:
        """Cheapest first: local rules, then pg_trgm, then the moderation endpoint."""
        draft = Draft(text=text, alt_text="", image_prompt="")
        rejection = check_draft(draft, self.generation)
        if rejection is not None:
            return rejection
        closest = max(await self._recent(text), key=lambda r: r["similarity"], default=None)
        threshold = self.conv.similarity_threshold
        if closest is not None and closest["similarity"] >= threshold:
            return too_similar(text, closest["content"], closest["similarity"], threshold)
        ai = self.ctx.services.ai
        reserved = await self.spend.reserve(ai.pricing.moderation_per_call)
        async with self.spend.charge("openai:moderation", reserved) as bill:
            result = await ai.moderate(text, model=self.generation.moderation_model)
            bill.usage = result.usage
        if result.flagged:
            return flagged(draft, result.categories)
        return None
