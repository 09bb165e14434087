"""How the stand-in renders and bills what a read returns: Posts, expansions, timelines.

``render_tweet`` gives a Post object with the fields asked for (the default `id`, `text`,
`edit_history_tweet_ids`; private metrics only in the author's user context and only for posts
under 30 days old, refused field by field in X's not-authorized errors), its ``entities``
(mentions, t.co links, openapi.json ``PostEntities.urls``) and poll ids (data-dictionary.mdx
"Poll"); ``render_includes`` the expansions. ``serve_timeline`` serves the paginated newest-first
timelines (mentions, user posts) with X's ``meta`` and pagination tokens, and ``bill_read``
bills what a read returned: posts as post reads, or owned reads when the timeline is the
authenticated user's own, expanded users and posts as reads, each resource once per UTC day
(docs.x.com/x-api/getting-started/pricing, ``billing``).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from sandbox.x_api import model as m
from sandbox.x_api import state as s
from sandbox.x_api import timeline
from sandbox.x_api.model import iso_ms
from sandbox.x_api.responses import AUTH_KEY, fields_param, param_error, respond, state_of
from sandbox.x_api.spec import field_refused, respell

_PRIVATE_METRICS_AGE = timedelta(days=30)


_TWEET_FIELDS_DEFAULT = ("id", "text", "edit_history_tweet_ids")


def _is_recent(tweet: m.Tweet, state: s.XState) -> bool:
    return datetime.fromtimestamp(state.now(), UTC) - tweet.created_at <= _PRIVATE_METRICS_AGE


def render_tweet(
    tweet: m.Tweet, fields: set[str], poll_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": tweet.id,
        "text": tweet.text,
        "edit_history_tweet_ids": [tweet.id],
    }
    if "author_id" in fields:
        data["author_id"] = tweet.author_id
    if "created_at" in fields:
        data["created_at"] = iso_ms(tweet.created_at)
    if "conversation_id" in fields:
        data["conversation_id"] = tweet.conversation_id
    if "in_reply_to_user_id" in fields and tweet.in_reply_to_user_id:
        data["in_reply_to_user_id"] = tweet.in_reply_to_user_id
    if "referenced_tweets" in fields and tweet.referenced_tweets:
        data["referenced_tweets"] = [dict(ref) for ref in tweet.referenced_tweets]
    if "attachments" in fields and tweet.media_keys:
        data["attachments"] = {"media_keys": list(tweet.media_keys)}
    if poll_ids and ("attachments" in fields or "attachments.poll_ids" in fields):
        data.setdefault("attachments", {})["poll_ids"] = list(poll_ids)
    if "entities" in fields and (entities := _entities(tweet.mentions, tweet.urls)):
        data["entities"] = entities
    if "lang" in fields:
        data["lang"] = tweet.lang
    if "note_tweet" in fields and tweet.note_text is not None:
        note: dict[str, Any] = {"text": tweet.note_text}
        if note_entities := _entities(tweet.note_mentions, tweet.note_urls):
            note["entities"] = note_entities
        data["note_tweet"] = note
    if "public_metrics" in fields:
        data["public_metrics"] = dict(tweet.metrics)
    if "non_public_metrics" in fields:
        data["non_public_metrics"] = {
            "impression_count": tweet.metrics["impression_count"],
            "url_link_clicks": tweet.private_metrics["url_link_clicks"],
            "user_profile_clicks": tweet.private_metrics["user_profile_clicks"],
            "engagements": tweet.private_metrics["engagements"],
        }
    if "organic_metrics" in fields:
        data["organic_metrics"] = {
            "impression_count": tweet.metrics["impression_count"],
            "like_count": tweet.metrics["like_count"],
            "reply_count": tweet.metrics["reply_count"],
            "retweet_count": tweet.metrics["retweet_count"],
            "url_link_clicks": tweet.private_metrics["url_link_clicks"],
            "user_profile_clicks": tweet.private_metrics["user_profile_clicks"],
        }
    return data


PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")


def fields_with_polls(request: web.Request, fields: set[str]) -> set[str]:
    """``tweet.fields`` plus the poll expansion, which puts ``attachments.poll_ids`` on the post
    (data-dictionary.mdx "Poll" sample: no ``attachments`` field asked, the ids still come)."""
    return fields | (fields_param(request, "expansions") & {"attachments.poll_ids"})


def poll_ids_of(request: web.Request, tweet: m.Tweet) -> tuple[str, ...]:
    poll = state_of(request).polls.get(tweet.id)
    return (poll.id,) if poll else ()


def _entities(mentions: list[dict[str, Any]], urls: list[dict[str, Any]]) -> dict[str, Any]:
    """``entities`` of a text: mentions, and the t.co links X put in it (rewriting.py), with
    the media link's ``media_key`` (openapi.json ``PostEntities.urls``)."""
    entities: dict[str, Any] = {}
    if mentions:
        entities["mentions"] = [dict(m) for m in mentions]
    if urls:
        entities["urls"] = [dict(u) for u in urls]
    return entities


def private_field_errors(
    tweet: m.Tweet, fields: set[str], request: web.Request, parameter: str, section: str
) -> list[dict[str, Any]]:
    """X's not-authorized-for-field errors for private metrics the caller may not see."""
    state = state_of(request)
    allowed = (
        request.get(AUTH_KEY) == "user"
        and tweet.author_id == state.me.id
        and _is_recent(tweet, state)
    )
    if allowed:
        return []
    return [
        field_refused(
            state.spec,
            state.problem_base,
            field=field,
            tweet_id=tweet.id,
            parameter=parameter,
            section=section,
        )
        for field in PRIVATE_FIELDS
        if field in fields
    ]


def render_includes(request: web.Request, tweets: list[m.Tweet]) -> dict[str, Any]:
    state = state_of(request)
    expansions = fields_param(request, "expansions")
    user_fields = fields_param(request, "user.fields")
    includes: dict[str, Any] = {}
    user_ids: list[str] = []
    if "author_id" in expansions:
        user_ids.extend(tweet.author_id for tweet in tweets)
    if "in_reply_to_user_id" in expansions:
        user_ids.extend(t.in_reply_to_user_id for t in tweets if t.in_reply_to_user_id)
    if "entities.mentions.username" in expansions:
        for tweet in tweets:
            user_ids.extend(tweet.mentioned_user_ids)
    users = []
    for user_id in dict.fromkeys(user_ids):
        user = state.users.get(user_id)
        if user:
            users.append(user.to_json(user_fields))
    if users:
        includes["users"] = users
    if "referenced_tweets.id" in expansions:
        tweet_fields = fields_param(request, "tweet.fields") - set(PRIVATE_FIELDS)
        refs = []
        for tweet in tweets:
            for ref in tweet.referenced_tweets:
                parent = state.tweets.get(ref["id"])
                if parent and not parent.deleted:
                    refs.append(render_tweet(parent, tweet_fields))
        if refs:
            includes["tweets"] = refs
    if "attachments.poll_ids" in expansions:
        poll_fields = fields_param(request, "poll.fields")
        found = [state.polls.render(t.id, poll_fields) for t in tweets]
        if any(found):
            includes["polls"] = [p for p in found if p]
    if "attachments.media_keys" in expansions:
        media = [
            {"media_key": m.media_key, "type": "photo"}
            for m in state.media.values()
            if any(m.media_key in t.media_keys for t in tweets)
        ]
        if media:
            includes["media"] = media
    return includes


def render_visible(
    request: web.Request,
    tweet: m.Tweet,
    fields: set[str],
    parameter: str,
    errors: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The Post as a read returns it, or None when it asks for private metrics the caller may
    not see: then X's not-authorized errors are added to ``errors`` and the Post is left out."""
    refused = (
        private_field_errors(tweet, fields, request, parameter, "data")
        if fields & set(PRIVATE_FIELDS)
        else []
    )
    if refused:
        errors.extend(refused)
        return None
    return render_tweet(tweet, fields_with_polls(request, fields), poll_ids_of(request, tweet))


def _encode_token(tweet_id: str) -> str:
    return base64.b32encode(tweet_id.encode()).decode().rstrip("=").lower()


def _decode_token(token: str) -> str | None:
    try:
        padded = token.upper() + "=" * (-len(token) % 8)
        value = base64.b32decode(padded).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return value if value.isdigit() else None


def _max_results(request: web.Request, default: int, low: int, high: int) -> int | web.Response:
    raw = request.query.get("max_results")
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        return param_error(
            "max_results",
            raw,
            f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
        )
    return int(raw)


def bill_read(request: web.Request, body: dict[str, Any], operation: str) -> None:
    """Bill what a read returned: its posts at `operation`'s price, expanded users and posts as
    user and post reads; each resource once per UTC day (sandbox/x_api/billing.py)."""
    billing = state_of(request).billing
    data = body.get("data")
    posts = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    billing.read(operation, "post", [str(p["id"]) for p in posts])
    includes = body.get("includes") or {}
    billing.read("user_read", "user", [str(u["id"]) for u in includes.get("users") or []])
    billing.read("post_read", "post", [str(p["id"]) for p in includes.get("tweets") or []])


def serve_timeline(
    request: web.Request, candidates: list[m.Tweet], *, owner_id: str
) -> web.Response:
    """Paginated newest-first timeline with X's meta (mentions, user tweets); pages may come
    short or empty with a next_token; start_time/end_time bound it (see timeline.py). Billed as
    owned reads when the timeline is the authenticated user's own (docs.x.com pricing, Owned
    Reads)."""
    state = state_of(request)
    limit = _max_results(request, 10, 5, 100)
    if isinstance(limit, web.Response):
        return limit
    since_id = request.query.get("since_id")
    until_id = request.query.get("until_id")
    for name, value in (("since_id", since_id), ("until_id", until_id)):
        if value is not None and not value.isdigit():
            return param_error(
                name, value, f"The `{name}` query parameter value [{value}] is not valid"
            )
    bounds: dict[str, datetime | None] = {}
    for name in ("start_time", "end_time"):
        raw = request.query.get(name)
        bounds[name] = timeline.parse_time(raw) if raw is not None else None
        if raw is not None and bounds[name] is None:
            return param_error(
                name, raw, f"The `{name}` query parameter value [{raw}] is not a valid time"
            )
    tweets = sorted(candidates, key=lambda t: int(t.id), reverse=True)
    if since_id:
        tweets = [t for t in tweets if int(t.id) > int(since_id)]
    if until_id:
        tweets = [t for t in tweets if int(t.id) < int(until_id)]
    if bounds["start_time"] or bounds["end_time"]:
        tweets = [
            t for t in tweets if timeline.in_time_range(t, bounds["start_time"], bounds["end_time"])
        ]
    token = request.query.get("pagination_token")
    if token is not None:
        below = _decode_token(token)
        if below is None:
            return param_error(
                "pagination_token",
                token,
                f"The `pagination_token` query parameter value [{token}] is not valid",
            )
        tweets = [t for t in tweets if int(t.id) < int(below)]
    page, next_below = timeline.cut_page(tweets, limit, state.page_rng, state.short_page_rate)
    fields = fields_param(request, "tweet.fields")
    errors: list[dict[str, Any]] = []
    data = []
    for tweet in page:
        rendered = render_visible(request, tweet, fields, "id", errors)
        if rendered is None:
            continue
        data.append(rendered)
    meta: dict[str, Any] = {"result_count": len(data)}
    if data:
        meta["newest_id"] = data[0]["id"]
        meta["oldest_id"] = data[-1]["id"]
    if next_below is not None:
        meta["next_token"] = _encode_token(str(next_below))
    if token is not None and page:
        meta["previous_token"] = _encode_token(str(int(page[0].id) + 1))
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
        includes = render_includes(request, [t for t in page if t.id in {d["id"] for d in data}])
        if includes:
            body["includes"] = includes
    if errors:
        body["errors"] = errors
    body["meta"] = meta
    state.count_reads(len(data))
    owned = request.get(AUTH_KEY) == "user" and owner_id == state.me.id
    bill_read(request, body, "owned_read" if owned else "post_read")
    return respond(respell(body, state.spec))
