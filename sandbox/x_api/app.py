"""aiohttp application of the X API v2 stand-in: the routes, and where each one lives.

Beyond the endpoints themselves it enforces what X enforces around them, each rule in its own
module with its source: the access tier (``access``: client-forbidden for likes and quote posts
off Enterprise, the summoned-reply rule), pay-per-use billing and 402 when credits or the
spending limit run out (``billing``), and the published rate-limit table with its 24-hour
windows (``limits``). The handlers are grouped by domain: ``posts`` (create, delete, like),
``reads`` (the user, timelines, lookups, usage), ``media`` (upload, metadata), the X Activity
API (``activity_routes``), and the control plane (``control``); ``middleware`` authenticates,
limits and logs every request, ``responses`` holds X's error shapes and ``render`` its Post
objects.
"""

from __future__ import annotations

from aiohttp import web

from sandbox.x_api import activity_routes
from sandbox.x_api import state as s
from sandbox.x_api.control import (
    sandbox_access,
    sandbox_add_mention,
    sandbox_add_user,
    sandbox_credentials,
    sandbox_credits,
    sandbox_day_limits,
    sandbox_faults,
    sandbox_likes,
    sandbox_metrics,
    sandbox_rate_limits,
    sandbox_requests,
    sandbox_state,
    sandbox_time,
    sandbox_tweets,
    sandbox_usage_cap,
)
from sandbox.x_api.media import GIF_LIMIT, media_metadata, media_upload
from sandbox.x_api.middleware import x_middleware
from sandbox.x_api.posts import create_tweet, delete_tweet, like
from sandbox.x_api.reads import get_me, lookup, mentions, usage, user_tweets, users_lookup
from sandbox.x_api.responses import STATE_KEY


def create_app(state: s.XState | None = None) -> web.Application:
    """The X API v2 stand-in; drive ``state`` in-process or through /_sandbox/..."""
    app = web.Application(middlewares=[x_middleware], client_max_size=GIF_LIMIT + 1024 * 1024)
    app[STATE_KEY] = state or s.XState()
    app.router.add_get("/2/users/me", get_me)
    app.router.add_post("/2/tweets", create_tweet)
    app.router.add_get("/2/tweets", lookup)
    app.router.add_delete("/2/tweets/{id}", delete_tweet)
    app.router.add_post("/2/users/{id}/likes", like)
    app.router.add_get("/2/users/{id}/mentions", mentions)
    app.router.add_get("/2/users/{id}/tweets", user_tweets)
    app.router.add_post("/2/media/upload", media_upload)
    app.router.add_post("/2/media/metadata", media_metadata)
    app.router.add_get("/2/usage/tweets", usage)
    app.router.add_get("/2/users", users_lookup)
    app.router.add_get("/_sandbox/state", sandbox_state)
    app.router.add_get("/_sandbox/credentials", sandbox_credentials)
    app.router.add_post("/_sandbox/users", sandbox_add_user)
    app.router.add_post("/_sandbox/mentions", sandbox_add_mention)
    app.router.add_post("/_sandbox/metrics", sandbox_metrics)
    app.router.add_get("/_sandbox/tweets", sandbox_tweets)
    app.router.add_get("/_sandbox/likes", sandbox_likes)
    app.router.add_get("/_sandbox/requests", sandbox_requests)
    app.router.add_post("/_sandbox/faults", sandbox_faults)
    app.router.add_post("/_sandbox/rate_limits", sandbox_rate_limits)
    app.router.add_post("/_sandbox/usage_cap", sandbox_usage_cap)
    app.router.add_post("/_sandbox/time", sandbox_time)
    app.router.add_post("/_sandbox/access", sandbox_access)
    app.router.add_post("/_sandbox/credits", sandbox_credits)
    app.router.add_post("/_sandbox/day_limits", sandbox_day_limits)
    activity_routes.install(app, app[STATE_KEY].activity)
    app.on_shutdown.append(_release_on_shutdown)
    return app


async def _release_on_shutdown(app: web.Application) -> None:
    app[STATE_KEY].release_hangs()
