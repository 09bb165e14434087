"""`generate_tweet`: write the text (and image) of a scheduled_tweets row that has a topic.

1. Claim the row (pending -> generating); a row cancelled meanwhile is left alone.
2. Reserve the estimated cost of the first text call and of the image in the monthly OpenAI
   budget (quota `openai_usd`). When it does not fit, the row goes back to pending and the job
   snoozes: SQL raised the alert, and the job looks again every few minutes, so a raised budget
   or a new month lets it through.
3. Start the image from the topic and style at once and write the text meanwhile, so the total
   is close to the slower of the two, not their sum.
4. Text: structured output (`GeneratedTweet`), then the checks (empty, X's weighted length,
   banned words, near-duplicate of recent tweets by pg_trgm, moderation); a failed check asks
   again naming the failure, up to `generation.max_attempts` drafts.
5. Image: PNG -> `fit_for_x` (X's size, bytes, no metadata) -> Storage -> public URL. A picture
   that cannot be fitted is drawn once more from the text model's own `image_prompt`.
6. Write content, image and alt text on the row: `awaiting_approval`, or back to `pending` with a
   `post_tweet` job (one statement).

Nothing half-made is posted. A refusal, exhausted checks or a request OpenAI calls invalid fail
the row with the reason (GiveUp). 429/5xx/timeouts (already retried inside the client) retry the
job later; the last attempt fails the row. Every billed call is recorded in `api_usage` and its
real cost replaces its reservation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from worker.clients.ai import (
    AIAuthError,
    AIBadRequest,
    AIInvalidOutput,
    AIQuotaExhausted,
    AIRateLimited,
    AIRefusal,
    AIUnavailable,
)
from worker.clients.storage import ImageStoreError, ImageStoreUnavailable
from worker.config.models import Generation, Persona
from worker.content.generation import (
    Draft,
    GeneratedTweet,
    Rejection,
    check_draft,
    flagged,
    image_prompt,
    invalid_output,
    near_duplicate,
    system_prompt,
    thread_part_topic,
    user_prompt,
)
from worker.content.images import ImageRejected, fit_for_x_async
from worker.jobs._openai import (
    CREDIT_RECHECK,
    BudgetReached,
    ChecksExhausted,
    OpenAISpend,
    text_estimate,
)
from worker.jobs._x import CAP_RECHECK, alert, next_month_start
from worker.jobs.context import JobContext
from worker.jobs.registry import GiveUp, RetryLater, Snooze, job_kind


class GenerateTweetPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_tweet_id: int


@dataclass(frozen=True)
class StoredImage:
    path: str
    url: str
    mime: str
    width: int
    height: int
    size: int


class Generator:
    """The text and image of one row."""

    #: Draw the image while the text is written. The benchmark turns it off to measure the
    #: sequential baseline through the same code.
    draw_concurrently: ClassVar[bool] = True

    def __init__(self, ctx: JobContext, row: dict[str, Any], spend: OpenAISpend):
        self.ctx = ctx
        self.row = row
        self.spend = spend
        self.persona: Persona = ctx.services.config.persona
        self.generation: Generation = ctx.services.config.generation
        self.want_image = bool(row["with_image"] or self.generation.image)
        self.image_brief = (
            image_prompt(row["topic"], self.persona, self.generation) if self.want_image else None
        )
        self.system = system_prompt(self.persona, self.generation)
        self.drafts = 0

    # -- estimates -----------------------------------------------------------------------------
    def _text_estimate(self, user: str) -> float:
        return text_estimate(self.ctx, self.generation.text_model, self.system, user)

    def _image_estimate(self) -> float:
        price = self.ctx.services.ai.pricing.image_price(self.generation.image_model)
        width, _, height = self.generation.image_size.partition("x")
        pixels = int(width) * int(height) if height else 1024 * 1024
        return price.per_image * max(1.0, pixels / (1024 * 1024))

    # -- the whole thing -----------------------------------------------------------------------
    async def run(self) -> tuple[Draft, StoredImage | None]:
        db = self.ctx.services.db
        recent_rows = await db.fetch(
            "recent_texts",
            {"id": self.row["id"], "text": "", "limit": self.generation.recent_window},
        )
        recent = [r["content"] for r in recent_rows]
        first_user = user_prompt(self.row["topic"], recent, image_brief=self.image_brief)

        # Both first calls are paid for before either starts: a budget that cannot cover the
        # image must not let the text be bought for nothing.
        image_reserved = (
            await self.spend.reserve(self._image_estimate()) if self.want_image else 0.0
        )
        try:
            text_reserved = await self.spend.reserve(self._text_estimate(first_user))
        except BudgetReached:
            await self.spend.release(image_reserved)
            raise

        brief = self.image_brief
        image_task: asyncio.Task[StoredImage] | None = None
        if brief is not None and self.draw_concurrently:
            image_task = asyncio.create_task(
                self._draw(brief, image_reserved), name=f"image-{self.row['id']}"
            )
            await asyncio.sleep(0)  # let the image request go out before the text's set-up work
        try:
            draft = await self._write(recent, first_user, text_reserved)
        except BaseException:
            if image_task is not None:
                image_task.cancel()
                await asyncio.gather(image_task, return_exceptions=True)
            else:
                await self.spend.release(image_reserved)
            raise
        if brief is None:
            return draft, None
        try:
            image = await (image_task or self._draw(brief, image_reserved))
        except (ImageRejected, AIInvalidOutput) as exc:
            # A broken or unfittable picture: one more, from the model's own description.
            self.ctx.log.warning("image unusable ({}); drawing it again", exc)
            reserved = await self.spend.reserve(self._image_estimate())
            image = await self._draw(draft.image_prompt or brief, reserved)
        return draft, image

    # -- text ----------------------------------------------------------------------------------
    async def _write(self, recent: list[str], first_user: str, reserved: float) -> Draft:
        ai = self.ctx.services.ai
        feedback: Rejection | None = None
        for attempt in range(1, self.generation.max_attempts + 1):
            user = first_user
            if attempt > 1:
                user = user_prompt(
                    self.row["topic"], recent, image_brief=self.image_brief, feedback=feedback
                )
                reserved = await self.spend.reserve(self._text_estimate(user))
            self.drafts = attempt
            try:
                async with self.spend.charge("openai:chat", reserved) as bill:
                    output, bill.usage = await ai.generate_tweet_text(
                        self.system, user, self.generation.text_model, GeneratedTweet
                    )
            except AIInvalidOutput as exc:
                feedback = invalid_output(exc.reason)
                self.ctx.log.info("draft {} unusable: {}", attempt, exc)
                continue
            draft = Draft.from_output(output)
            feedback = await self._check(draft)
            if feedback is None:
                return draft
            self.ctx.log.info(
                "draft {} rejected by the {} check: {}", attempt, feedback.check, feedback.reason
            )
        assert feedback is not None
        raise ChecksExhausted(self.generation.max_attempts, feedback)

    async def _check(self, draft: Draft) -> Rejection | None:
        """Cheapest first: local rules, then pg_trgm, then the moderation endpoint."""
        rejection = check_draft(draft, self.generation)
        if rejection is not None:
            return rejection
        if self.generation.recent_window > 0:
            rows = await self.ctx.services.db.fetch(
                "recent_texts",
                {"id": self.row["id"], "text": draft.text, "limit": self.generation.recent_window},
            )
            closest = max(rows, key=lambda r: r["similarity"], default=None)
            threshold = self.generation.similarity_threshold
            if closest is not None and closest["similarity"] >= threshold:
                return near_duplicate(draft, closest["content"], closest["similarity"], threshold)
        ai = self.ctx.services.ai
        reserved = await self.spend.reserve(ai.pricing.moderation_per_call)
        async with self.spend.charge("openai:moderation", reserved) as bill:
            result = await ai.moderate(
                f"{draft.text}\n\n{draft.alt_text}".strip(), model=self.generation.moderation_model
            )
            bill.usage = result.usage
        if result.flagged:
            return flagged(draft, result.categories)
        return None

    # -- image ---------------------------------------------------------------------------------
    async def _draw(self, prompt: str, reserved: float) -> StoredImage:
        ai = self.ctx.services.ai
        async with self.spend.charge("openai:images", reserved) as bill:
            png, bill.usage = await ai.generate_image(
                prompt, self.generation.image_model, self.generation.image_size
            )
        fitted = await fit_for_x_async(png)
        url = await self.ctx.services.images.upload_image(fitted)
        return StoredImage(
            path=fitted.filename,
            url=url,
            mime=fitted.mime,
            width=fitted.width,
            height=fitted.height,
            size=fitted.size,
        )


class ThreadPart(Generator):
    """One part of a generated thread: checked as a tweet, and also against the parts before
    it (X refuses a duplicate post, and a thread that repeats itself reads badly)."""

    def __init__(
        self, ctx: JobContext, row: dict[str, Any], spend: OpenAISpend, earlier: list[str]
    ):
        super().__init__(ctx, row, spend)
        self.earlier = earlier

    async def _check(self, draft: Draft) -> Rejection | None:
        if self.earlier:
            closest = await self.ctx.services.db.fetchrow(
                "similarity_to_each", {"text": draft.text, "others": self.earlier}
            )
            threshold = self.generation.similarity_threshold
            if closest is not None and closest["similarity"] >= threshold:
                return near_duplicate(draft, closest["other"], closest["similarity"], threshold)
        return await super()._check(draft)


async def write_thread(
    ctx: JobContext, row: dict[str, Any], spend: OpenAISpend
) -> tuple[list[Draft], StoredImage | None]:
    """The parts of a generated thread (`thread_parts` of them), one after the other: each a
    draft written and checked as a tweet is (and against the parts before it), given the parts
    before it. An image, when asked for, goes with part 1 alone."""
    total = int(row["thread_parts"])
    drafts: list[Draft] = []
    image: StoredImage | None = None
    for position in range(1, total + 1):
        earlier = [d.text for d in drafts]
        topic = thread_part_topic(row["topic"], position, total, earlier)
        part = ThreadPart(ctx, {**row, "topic": topic}, spend, earlier)
        if position > 1:
            part.want_image, part.image_brief = False, None
        draft, drawn = await part.run()
        drafts.append(draft)
        image = image or drawn
    return drafts, image


# -- the handler -------------------------------------------------------------------------------


@job_kind("generate_tweet", GenerateTweetPayload, concurrency=4, lease=timedelta(seconds=120))
async def generate_tweet(payload: GenerateTweetPayload, ctx: JobContext) -> dict[str, Any] | None:
    db = ctx.services.db
    row_id = payload.scheduled_tweet_id
    row = await db.fetchrow("claim_generation", {"id": row_id})
    if row is None:
        return await _not_claimed(ctx, row_id)

    spend = OpenAISpend(ctx)
    generator = Generator(ctx, row, spend)
    started = datetime.now(UTC)
    try:
        if row["thread_parts"]:
            thread, image = await write_thread(ctx, row, spend)
            draft = thread[0]
        else:
            thread = []
            draft, image = await generator.run()
    except BudgetReached as exc:
        await db.execute("release_generation", {"id": row_id, "error": str(exc)})
        until = min(next_month_start(), datetime.now(UTC) + CAP_RECHECK)
        raise Snooze(until, str(exc)) from None
    except ChecksExhausted as exc:
        raise await _give_up(ctx, row_id, str(exc)) from None
    except AIRefusal as exc:
        raise await _give_up(ctx, row_id, f"OpenAI refused to write it: {exc.refusal}") from None
    except (AIRateLimited, AIUnavailable, ImageStoreUnavailable) as exc:
        raise await _retry_later(ctx, row_id, exc) from None
    except AIQuotaExhausted as exc:
        await alert(
            ctx,
            "critical",
            "openai_quota_exhausted",
            "openai_quota_exhausted",
            f"OpenAI says the account is out of credit: {exc}",
        )
        await db.execute(
            "release_generation", {"id": row_id, "error": "OpenAI account out of credit"}
        )
        raise Snooze(datetime.now(UTC) + CREDIT_RECHECK, "OpenAI account out of credit") from None
    except AIAuthError as exc:
        await alert(
            ctx, "critical", "openai_auth", "openai_auth", f"OpenAI rejected the key: {exc}"
        )
        raise await _retry_later(ctx, row_id, exc, retry_in=timedelta(minutes=10)) from None
    except AIBadRequest as exc:
        reason = f"OpenAI refused the request (check configs.generation models and sizes): {exc}"
        raise await _give_up(ctx, row_id, reason) from None
    except (ImageRejected, AIInvalidOutput) as exc:
        raise await _give_up(ctx, row_id, f"no usable image: {exc}") from None
    except ImageStoreError as exc:
        raise await _give_up(ctx, row_id, f"Storage refused the image: {exc}") from None
    except Exception as exc:
        if ctx.is_last_attempt:
            await _fail_row(ctx, row_id, f"generation failed: {type(exc).__name__}: {exc}")
        raise

    gen = ctx.services.config.generation
    alt_text = None
    if image is not None and gen.alt_text:
        alt_text = draft.alt_text or f"Illustration for a post about {row['topic']}"
    written: dict[str, Any] = (
        {"thread": [d.text for d in thread]} if thread else {"content": draft.text}
    )
    done = await db.fetchrow(
        "finish_thread_generation" if thread else "finish_generation",
        {
            "id": row_id,
            **written,
            "image_path": image.path if image else None,
            "image_url": image.url if image else None,
            "alt_text": alt_text,
            "require_approval": gen.require_approval,
        },
    )
    seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
    if done is None:
        ctx.log.info("row {} changed while generating (cancelled?); result dropped", row_id)
        return {"skipped": "row left generating meanwhile", "cost_usd": round(spend.total_usd, 6)}
    ctx.log.info(
        "row {} generated in {}s ({} draft(s)): {}",
        row_id,
        seconds,
        generator.drafts,
        done["status"],
    )
    return {
        "status": done["status"],
        "drafts": generator.drafts,
        "thread_parts": len(thread) or None,
        "image_path": image.path if image else None,
        "image": f"{image.width}x{image.height} {image.mime} {image.size} B" if image else None,
        "post_job_id": done["job_id"] if done["status"] == "pending" else None,
        "cost_usd": round(spend.total_usd, 6),
        "seconds": seconds,
    }


async def _not_claimed(ctx: JobContext, row_id: int) -> dict[str, Any]:
    row = await ctx.services.db.fetchrow("generation_row", {"id": row_id})
    if row is None:
        raise GiveUp(f"scheduled_tweets row {row_id} does not exist")
    if row["topic"] is None:
        raise GiveUp(f"scheduled_tweets row {row_id} has no topic to write about")
    if row["status"] == "pending" and row["content"]:
        # Written by an earlier run whose success was not recorded: make sure it gets posted.
        job_id = await ctx.services.db.fetchval(
            "enqueue_generated_post", {"id": row_id, "scheduled_for": row["scheduled_for"]}
        )
        return {"already_generated": True, "post_job_id": job_id}
    return {"skipped": row["status"]}


async def _fail_row(ctx: JobContext, row_id: int, reason: str) -> None:
    await ctx.services.db.execute("fail_generation", {"id": row_id, "error": reason})


async def _give_up(ctx: JobContext, row_id: int, reason: str) -> GiveUp:
    await _fail_row(ctx, row_id, reason)
    ctx.log.warning("row {} failed: {}", row_id, reason)
    return GiveUp(reason)


async def _retry_later(
    ctx: JobContext, row_id: int, exc: Exception, *, retry_in: timedelta | None = None
) -> Exception:
    if ctx.is_last_attempt:
        return await _give_up(ctx, row_id, f"gave up after {ctx.job.attempts} attempts: {exc}")
    await ctx.services.db.execute(
        "release_generation", {"id": row_id, "error": f"will retry: {exc}"}
    )
    retry_after = getattr(exc, "retry_after", None)
    if retry_in is None and retry_after:
        retry_in = timedelta(seconds=float(retry_after))
    return RetryLater(str(exc), retry_in=retry_in)
