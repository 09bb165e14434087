"""Pages that watch: activity (posts, engagement, replies and likes), money and quotas, alerts.

Money shows what the `status` snapshot holds (the same numbers as `chirpbase status` and
/health), this month's use per endpoint, the caps, and what each capability costs. Fields the
snapshot gains later (prices per operation, a dollar budget ...) are listed as they come, so the
page grows with the snapshot instead of hiding what it does not know yet.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from worker.alerts.fixes import fix_for
from worker.clients.ai.pricing import Pricing
from worker.config.models import Engagement, Generation, PricingConfig, Quotas
from worker.console.core import CONSOLE, error_page
from worker.ops.operator import Operator, OperatorError

KNOWN_BUDGET_KEYS = {
    "month", "plan", "spent_usd", "x_usd", "openai_usd", "posts", "reads", "month_elapsed",
    "projected_usd",
}  # fmt: skip
KNOWN_SNAPSHOT_KEYS = {
    "generated_at", "queue", "queue_max_lag_s", "upcoming", "recent", "quota", "budget", "alerts",
}  # fmt: skip
TEXT_TOKENS_PER_TWEET = (1_500, 300)  # a prompt with persona and recent tweets, one answer


M = TypeVar("M", bound=BaseModel)


def _config(op: Operator, key: str, model: type[M]) -> M:
    """The stored config as its model; fields the model refuses fall back to defaults (the
    worker raised a config_rejected alert for them already)."""
    rows = op.configs()
    value = next((dict(r["value"] or {}) for r in rows if r["key"] == key), {})
    try:
        return model.model_validate(value)
    except ValidationError:
        known = {k: v for k, v in value.items() if k in model.model_fields}
        try:
            return model.model_validate(known)
        except ValidationError:
            return model()


def like_outcome(
    reply: dict[str, Any], engagement: Engagement, *, likes_unavailable: str | None = None
) -> tuple[str, str]:
    """(state, why) for a reply: liked, skipped, waiting, failed, or not asked for.
    `likes_unavailable` is why the X access tier has no likes (SQL x_capability_notice)."""
    if reply.get("liked"):
        return "liked", "liked on X"
    status, result = reply.get("like_status"), reply.get("like_result") or {}
    if status == "succeeded":
        if result.get("skipped"):
            return "skipped", str(result["skipped"])
        if result.get("already_liked"):
            return "liked", "already liked"
        return "liked", "liked on X"
    if status in ("queued", "running"):
        return "waiting", "the like is queued" if status == "queued" else "liking now"
    if status in ("failed", "dead"):
        return "failed", reply.get("like_error") or status
    if status == "skipped":  # the access tier has no likes, or X refused them
        return "skipped", str(result.get("skipped") or "the like was skipped")
    if status == "cancelled":
        return "skipped", "the like job was cancelled"
    if reply.get("own"):
        return "skipped", "the account's own post"
    if likes_unavailable:
        return "skipped", likes_unavailable
    if not engagement.auto_like:
        return "skipped", "auto-like is off"
    if reply.get("author_id") in set(engagement.skip_authors):
        return "skipped", "author in skip_authors"
    if not reply.get("to_our_tweet") and not engagement.like_mentions:
        return "skipped", "a plain mention, and like_mentions is off"
    return "skipped", "no like was asked for"


async def activity_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]

    def load(op: Operator) -> dict[str, Any]:
        likes = next((c for c in op.capabilities() if c["capability"] == "likes"), None)
        return {
            **op.activity(limit=30),
            "engagement": _config(op, "engagement", Engagement),
            "likes_unavailable": None if likes is None or likes["available"] else likes["notice"],
            "waiting": op.inbox_state()["waiting"],
        }

    try:
        data = await console.call(load)
    except OperatorError as exc:
        return error_page(request, exc)
    for reply in data["replies"]:
        reply["outcome"], reply["why"] = like_outcome(
            reply, data["engagement"], likes_unavailable=data["likes_unavailable"]
        )
    return console.render(
        request,
        "activity.html",
        current="activity",
        posts=data["posts"],
        replies=data["replies"],
        waiting=data["waiting"],
    )


def capability_prices(pricing: PricingConfig, generation: Generation) -> list[dict[str, Any]]:
    """What each thing the account does costs, from the `pricing` row (X's prices per operation,
    OpenAI's over the worker's table)."""
    x = pricing.x
    openai = Pricing().merged(pricing.openai.model_dump(exclude_none=True))
    text = openai.text_price(generation.text_model)
    tokens_in, tokens_out = TEXT_TOKENS_PER_TWEET
    image = openai.image_price(generation.image_model)
    return [
        {"what": "Post a tweet (X)", "unit": "per post", "usd": x.post,
         "source": "pricing.x.post"},
        {"what": "Post a tweet with a link (X)", "unit": "per post", "usd": x.post_with_url,
         "source": "pricing.x.post_with_url"},
        {"what": "Reply to a post that summoned the account (X)", "unit": "per reply",
         "usd": x.reply_summoned, "source": "pricing.x.reply_summoned"},
        {"what": "Alt text for an image (X)", "unit": "per image", "usd": x.media_metadata,
         "source": "pricing.x.media_metadata"},
        {"what": "Read the account's own posts or mentions (X)",
         "unit": "per post, once a UTC day", "usd": x.owned_read, "source": "pricing.x.owned_read"},
        {"what": "Read other posts (X)", "unit": "per post, once a UTC day", "usd": x.post_read,
         "source": "pricing.x.post_read"},
        {"what": "Read a user (X)", "unit": "per user, once a UTC day", "usd": x.user_read,
         "source": "pricing.x.user_read"},
        {"what": "Receive an X Activity API event", "unit": "per event",
         "usd": x.activity_event, "source": "pricing.x.activity_event"},
        {"what": f"Write a tweet ({generation.text_model})",
         "unit": f"about {tokens_in:,} tokens in, {tokens_out} out",
         "usd": openai.text_cost(generation.text_model, tokens_in, 0, tokens_out),
         "source": f"${text.input}/M in, ${text.output}/M out"},
        {"what": f"Draw an image ({generation.image_model})", "unit": "per image",
         "usd": image.per_image, "source": "pricing.openai / OpenAI price list"},
        {"what": f"Moderate a draft ({generation.moderation_model})", "unit": "per call",
         "usd": openai.moderation_per_call, "source": "OpenAI price list"},
    ]  # fmt: skip


async def money_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]

    def load(op: Operator) -> dict[str, Any]:
        return {
            "snapshot": op.status_snapshot(limit=1),
            "usage": op.usage(),
            "quotas": _config(op, "quotas", Quotas),
            "pricing": _config(op, "pricing", PricingConfig),
            "generation": _config(op, "generation", Generation),
            "waiting": op.inbox_state()["waiting"],
        }

    try:
        data = await console.call(load)
    except OperatorError as exc:
        return error_page(request, exc)
    snap = data["snapshot"]
    budget = snap.get("budget") or {}
    extra_budget = {k: v for k, v in budget.items() if k not in KNOWN_BUDGET_KEYS}
    extra_snapshot = {k: v for k, v in snap.items() if k not in KNOWN_SNAPSHOT_KEYS}
    return console.render(
        request,
        "money.html",
        current="money",
        budget=budget,
        extra_budget=extra_budget,
        extra_snapshot=extra_snapshot,
        quota=snap.get("quota") or [],
        usage=data["usage"],
        quotas=data["quotas"],
        prices=capability_prices(data["pricing"], data["generation"]),
        waiting=data["waiting"],
    )


async def alerts_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]

    def load(op: Operator) -> dict[str, Any]:
        return {"alerts": op.alerts(limit=50), "waiting": op.inbox_state()["waiting"]}

    try:
        data = await console.call(load)
    except OperatorError as exc:
        return error_page(request, exc)
    alerts = data["alerts"]
    for a in alerts:
        a["fix"] = fix_for(a["kind"])
    return console.render(
        request,
        "alerts.html",
        current="alerts",
        open_alerts=[a for a in alerts if a["resolved_at"] is None],
        resolved=[a for a in alerts if a["resolved_at"] is not None],
        waiting=data["waiting"],
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/activity", activity_page, name="activity")
    app.router.add_get("/money", money_page, name="money")
    app.router.add_get("/alerts", alerts_page, name="alerts")
