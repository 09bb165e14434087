"""Reading X through the stand-in: the user, timelines, lookups and usage.

``GET /2/users/me``, ``GET /2/users/:id/mentions`` and ``/tweets`` (paginated timelines,
``render.serve_timeline``), ``GET /2/tweets?ids=`` and ``GET /2/users?ids=`` (1 to 100 ids,
openapi.json; unknown ids as resource-not-found errors), each billed per resource returned once
a UTC day (User: Read, Post read, or Owned Read; docs.x.com/x-api/getting-started/pricing), and
``GET /2/usage/tweets``: the project's post reads against its cap (pay-per-use's documented 3
million Post reads per monthly billing cycle when none is set), per day over 1 to 90 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from sandbox.x_api import timeline
from sandbox.x_api.render import (
    bill_read,
    render_includes,
    render_visible,
    serve_timeline,
)
from sandbox.x_api.responses import (
    fields_param,
    invalid_request,
    not_found,
    param_error,
    respond,
    state_of,
)
from sandbox.x_api.spec import respell


async def get_me(request: web.Request) -> web.Response:
    state = state_of(request)
    state.billing.read("user_read", "user", [state.me.id])
    return respond({"data": state.me.to_json(fields_param(request, "user.fields"))})


async def mentions(request: web.Request) -> web.Response:
    state = state_of(request)
    user_id = request.match_info["id"]
    if user_id not in state.users:
        return respond({"errors": [not_found("user", user_id, "id")]})
    candidates = [
        t for t in state.tweets.values() if not t.deleted and user_id in t.mentioned_user_ids
    ]
    return serve_timeline(request, candidates, owner_id=user_id)


async def user_tweets(request: web.Request) -> web.Response:
    state = state_of(request)
    user_id = request.match_info["id"]
    if user_id not in state.users:
        return respond({"errors": [not_found("user", user_id, "id")]})
    candidates = [t for t in state.tweets.values() if not t.deleted and t.author_id == user_id]
    return serve_timeline(request, timeline.visible(state, candidates), owner_id=user_id)


def _ids_param(request: web.Request) -> list[str] | web.Response:
    """The ``ids`` query parameter of a lookup: 1 to 100 numeric ids, else X's 400 answer
    (openapi.json ``/2/tweets`` and ``/2/users``: ids, minItems 1, maxItems 100)."""
    raw = request.query.get("ids")
    if not raw:
        return invalid_request(
            [{"parameters": {"ids": []}, "message": "The `ids` query parameter can not be empty"}]
        )
    ids = raw.split(",")
    if len(ids) > 100:
        return param_error(
            "ids",
            raw,
            f"The number of values in the `ids` query parameter list [{len(ids)}] "
            "is not between 1 and 100",
        )
    for one in ids:
        if not one.isdigit():
            return param_error("ids", one, f"The `ids` query parameter value [{one}] is not valid")
    return ids


async def lookup(request: web.Request) -> web.Response:
    state = state_of(request)
    ids = _ids_param(request)
    if isinstance(ids, web.Response):
        return ids
    fields = fields_param(request, "tweet.fields")
    data = []
    errors: list[dict[str, Any]] = []
    found = []
    for tweet_id in dict.fromkeys(ids):
        tweet = state.get_tweet(tweet_id)
        if tweet is None or tweet.deleted:
            errors.append(not_found("tweet", tweet_id, "ids"))
            continue
        rendered = render_visible(request, tweet, fields, "ids", errors)
        if rendered is None:
            continue
        data.append(rendered)
        found.append(tweet)
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
        includes = render_includes(request, found)
        if includes:
            body["includes"] = includes
    if errors:
        body["errors"] = errors
    state.count_reads(len(data))
    bill_read(request, body, "post_read")
    return respond(respell(body, state.spec))


async def users_lookup(request: web.Request) -> web.Response:
    """``GET /2/users?ids=`` (1 to 100 ids): users found in ``data``, the others as
    resource-not-found errors. A User: Read each, once a UTC day (billing.py)."""
    state = state_of(request)
    ids = _ids_param(request)
    if isinstance(ids, web.Response):
        return ids
    fields = fields_param(request, "user.fields")
    data = []
    errors = []
    for user_id in dict.fromkeys(ids):
        user = state.users.get(user_id)
        if user is None:
            errors.append(not_found("user", user_id, "ids"))
        else:
            data.append(user.to_json(fields))
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if errors:
        body["errors"] = errors
    state.billing.read("user_read", "user", [u["id"] for u in data])
    return respond(body)


async def usage(request: web.Request) -> web.Response:
    state = state_of(request)
    raw_days = request.query.get("days", "7")
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 90:
        return param_error(
            "days",
            raw_days,
            f"The `days` query parameter value [{raw_days}] is not between 1 and 90",
        )
    fields = fields_param(request, "usage.fields")
    # Without a configured cap, pay-per-use's documented cap: "capped at 3 million Post reads
    # per monthly billing cycle" (docs.x.com/x-api/getting-started/pricing).
    cap = state.monthly_read_cap if state.monthly_read_cap is not None else 3_000_000
    data: dict[str, Any] = {
        "cap_reset_day": state.cap_reset_day,
        "project_cap": str(cap),
        "project_id": state.project_id,
        "project_usage": str(state.posts_read),
    }
    today = datetime.fromtimestamp(state.now(), UTC).date()
    days = [today - timedelta(days=offset) for offset in range(int(raw_days))]
    daily = [
        {
            "date": f"{day.isoformat()}T00:00:00.000Z",
            "usage": str(state.daily_reads.get(day.isoformat(), 0)),
        }
        for day in reversed(days)
    ]
    if "daily_project_usage" in fields:
        data["daily_project_usage"] = {"project_id": state.project_id, "usage": daily}
    if "daily_client_app_usage" in fields:
        data["daily_client_app_usage"] = [
            {"client_app_id": "1", "usage": daily, "usage_result_count": len(daily)}
        ]
    return respond({"data": data})
