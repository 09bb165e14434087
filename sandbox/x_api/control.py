"""The stand-in's control plane (``/_sandbox/...``): what tests and the demo use to drive X.

Not part of X's API: these routes add users and mentions, set metrics, inject faults, change
rate limits, usage caps, the access tier, credits and 24-hour limits, move the stand-in's clock,
and show its state, requests, posts and likes. They take no authentication and are never
rate-limited or billed (the middleware passes ``/_sandbox`` paths through).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.x_api import access
from sandbox.x_api.responses import respond, state_of


async def _control_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="JSON object expected")
    return body


async def sandbox_state(request: web.Request) -> web.Response:
    return respond(state_of(request).snapshot())


async def sandbox_add_user(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        user = state_of(request).add_user(
            body["username"],
            name=body.get("name"),
            user_id=body.get("id"),
            followers=int(body.get("followers", 0)),
        )
    except (KeyError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return respond(user.to_json({"created_at", "public_metrics"}), 201)


async def sandbox_add_mention(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        tweet = state_of(request).add_mention(
            str(body["author"]),
            body.get("text"),
            in_reply_to=body.get("in_reply_to"),
            lang=str(body.get("lang", "en")),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return respond(tweet.to_json(), 201)


async def sandbox_metrics(request: web.Request) -> web.Response:
    body = await _control_body(request)
    tweet_id = str(body.pop("tweet_id", ""))
    try:
        metrics = state_of(request).advance_metrics(
            tweet_id, **{k: int(v) for k, v in body.items()}
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return respond(metrics)


async def sandbox_tweets(request: web.Request) -> web.Response:
    state = state_of(request)
    mine = [tweet.to_json() for tweet in state.posted_tweets(include_deleted=True)]
    return respond({"tweets": mine})


async def sandbox_likes(request: web.Request) -> web.Response:
    return respond({"likes": [vars(like) for like in state_of(request).like_requests()]})


async def sandbox_requests(request: web.Request) -> web.Response:
    state = state_of(request)
    return respond({"counts": state.request_counts(), "total": state.request_count()})


async def sandbox_faults(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _control_body(request)
    if body.get("clear"):
        state.clear_faults()
    endpoint = body.get("endpoint")
    if "latency" in body and endpoint:
        state.inject_latency(endpoint, float(body["latency"]))
    if "fail_next" in body and endpoint:
        state.fail_next(endpoint, int(body["fail_next"]), status=int(body.get("status", 503)))
    if "hang_next" in body and endpoint:
        state.hang_next(endpoint, int(body["hang_next"]), seconds=float(body.get("seconds", 60)))
    if "rate_limit_without_reset_next" in body and endpoint:
        state.rate_limit_without_reset_next(endpoint, int(body["rate_limit_without_reset_next"]))
    if "drop_after_create_next" in body:
        state.drop_after_create_next(
            int(body["drop_after_create_next"]), mode=body.get("mode", "reset")
        )
    if body.get("release_hangs"):
        state.release_hangs()
    return respond({"ok": True})


async def sandbox_rate_limits(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        window = state_of(request).set_rate_limit(
            body["endpoint"],
            limit=body.get("limit"),
            window_secs=body.get("window_secs"),
            remaining=body.get("remaining"),
            reset_in=body.get("reset_in"),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing {exc}") from None
    return respond(vars(window))


async def sandbox_usage_cap(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _control_body(request)
    state.set_usage_cap(posts=body.get("posts", "keep"), reads=body.get("reads", "keep"))
    return respond(
        {"monthly_post_cap": state.monthly_post_cap, "monthly_read_cap": state.monthly_read_cap}
    )


async def sandbox_access(request: web.Request) -> web.Response:
    """Set the app's access tier: {"tier": "pay_per_use" | "basic" | "pro" | "enterprise"}."""
    state = state_of(request)
    body = await _control_body(request)
    tier = body.get("tier", state.access_tier)
    if tier not in access.TIERS:
        raise web.HTTPBadRequest(text=f"tier must be one of {', '.join(access.TIERS)}")
    state.access_tier = tier
    return respond({"tier": state.access_tier})


async def sandbox_credits(request: web.Request) -> web.Response:
    """Credits and spending limit: {"credits_usd": 5} (null: unlimited), {"add": 10},
    {"spending_limit_usd": 20} (null: none). Answers the billing snapshot."""
    billing = state_of(request).billing
    body = await _control_body(request)
    if "credits_usd" in body:
        billing.credits_usd = None if body["credits_usd"] is None else float(body["credits_usd"])
    if "add" in body:
        billing.add_credits(float(body["add"]))
    if "spending_limit_usd" in body:
        limit = body["spending_limit_usd"]
        billing.spending_limit_usd = None if limit is None else float(limit)
    return respond(billing.snapshot())


async def sandbox_day_limits(request: web.Request) -> web.Response:
    """A 24-hour window: {"endpoint": "POST /2/tweets", "remaining": 0, "reset_in": 3600}."""
    body = await _control_body(request)
    try:
        day = state_of(request).day_limits.set(
            body["endpoint"],
            scope=body.get("scope"),
            limit=body.get("limit"),
            remaining=body.get("remaining"),
            reset_in=body.get("reset_in"),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing {exc}") from None
    return respond({"scope": day.scope, **vars(day.window)})


async def sandbox_time(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await _control_body(request)
    state.advance_time(float(body.get("advance", 0)))
    return respond({"now": state.now()})


async def sandbox_credentials(request: web.Request) -> web.Response:
    """The stand-in's own (fake) credentials, for a demo that starts it separately."""
    return respond(state_of(request).credentials)
