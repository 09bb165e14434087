"""aiohttp application of the X API v2 stand-in.

Beyond the endpoints themselves it enforces what X enforces around them, each rule in its own
module with its source: the access tier (``access``: client-forbidden for likes and quote posts
off Enterprise, the summoned-reply rule), pay-per-use billing and 402 when credits or the
spending limit run out (``billing``), and the published rate-limit table with its 24-hour
windows (``limits``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import struct
import time
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from sandbox.x_api import access, activity, activity_routes, polls, timeline
from sandbox.x_api import state as s
from sandbox.x_api.billing import payment_required
from sandbox.x_api.oauth import OAuthError, parse_authorization, verify_signature
from sandbox.x_api.spec import field_refused, respell
from sandbox.x_api.text import contains_url, is_blank, refusal

STATE_KEY = web.AppKey("x_state", s.XState)
AUTH_KEY = web.RequestKey("x_auth", str)  # "user" or "app" once authenticated

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/2/users/me$"), s.ME),
    ("POST", re.compile(r"^/2/tweets$"), s.CREATE_TWEET),
    ("GET", re.compile(r"^/2/tweets$"), s.LOOKUP),
    ("DELETE", re.compile(r"^/2/tweets/(?P<id>[0-9]+)$"), s.DELETE_TWEET),
    ("POST", re.compile(r"^/2/users/(?P<id>[0-9]+)/likes$"), s.LIKE),
    ("GET", re.compile(r"^/2/users/(?P<id>[0-9]+)/mentions$"), s.MENTIONS),
    ("GET", re.compile(r"^/2/users/(?P<id>[0-9]+)/tweets$"), s.USER_TWEETS),
    ("POST", re.compile(r"^/2/media/upload$"), s.MEDIA_UPLOAD),
    ("POST", re.compile(r"^/2/media/metadata$"), s.MEDIA_METADATA),
    ("GET", re.compile(r"^/2/usage/tweets$"), s.USAGE),
    ("GET", re.compile(r"^/2/users$"), s.USERS_LOOKUP),
]
_ROUTES.extend(activity.ROUTES)  # the X Activity API and webhooks (activity_routes.py)
# Which authentication each endpoint accepts (X's docs): user = OAuth 1.0a user context,
# app = OAuth 2.0 app-only bearer token.
_AUTH: dict[str, frozenset[str]] = {
    s.ME: frozenset({"user"}),
    s.CREATE_TWEET: frozenset({"user"}),
    s.DELETE_TWEET: frozenset({"user"}),
    s.LIKE: frozenset({"user"}),
    s.MENTIONS: frozenset({"user", "app"}),
    s.USER_TWEETS: frozenset({"user", "app"}),
    s.LOOKUP: frozenset({"user", "app"}),
    s.MEDIA_UPLOAD: frozenset({"user"}),
    s.MEDIA_METADATA: frozenset({"user"}),
    s.USAGE: frozenset({"app"}),
    s.USERS_LOOKUP: frozenset({"user", "app"}),
}
_AUTH.update(activity.AUTH)
_READ_ENDPOINTS = {s.MENTIONS, s.USER_TWEETS, s.LOOKUP}
_IMAGE_LIMIT = 5 * 1024 * 1024
_GIF_LIMIT = 15 * 1024 * 1024
_ALT_TEXT_LIMIT = 1000
_PRIVATE_METRICS_AGE = timedelta(days=30)
_TWEET_FIELDS_DEFAULT = ("id", "text", "edit_history_tweet_ids")


# --- problem bodies (X's error JSON) ------------------------------------------------------------


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type="application/json")


def problem(
    status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any
) -> web.Response:
    return _json(
        {"title": title, "detail": detail, "type": type_, "status": status, **extra}, status
    )


def unauthorized() -> web.Response:
    return problem(401, "Unauthorized", "Unauthorized")


def invalid_request(errors: list[dict[str, Any]]) -> web.Response:
    return _json(
        {
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        400,
    )


def _problem_type(request: web.Request, name: str) -> str:
    """A problem ``type`` URI under the host this stand-in answers with (XState.problem_base)."""
    return f"{_state(request).problem_base}/{name}"


def _param_error(name: str, value: str, message: str) -> web.Response:
    return invalid_request([{"parameters": {name: [value]}, "message": message}])


def _not_found(resource_type: str, value: str, parameter: str) -> dict[str, Any]:
    kind = "tweet" if resource_type == "tweet" else resource_type
    return {
        "value": value,
        "detail": f"Could not find {kind} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def _usage_capped(state: s.XState) -> web.Response:
    return _json(
        {
            "title": "UsageCapExceeded",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": f"{state.problem_base}/usage-capped",
            "period": "Monthly",
            "scope": "Product",
        },
        429,
    )


def _too_many_requests() -> web.Response:
    return problem(429, "Too Many Requests", "Too Many Requests")


def _unsupported_auth(endpoint: str, auth: str) -> web.Response:
    supported = (
        "[OAuth 2.0 Application-Only]"
        if _AUTH[endpoint] == frozenset({"app"})
        else "[OAuth 1.0a User Context, OAuth 2.0 User Context]"
    )
    used = "OAuth 2.0 Application-Only" if auth == "app" else "OAuth 1.0a User Context"
    return problem(
        403,
        "Unsupported Authentication",
        f"Authenticating with {used} is forbidden for this endpoint.  "
        f"Supported authentication types are {supported}.",
        "https://api.twitter.com/2/problems/unsupported-authentication",
    )


# --- middleware ---------------------------------------------------------------------------------


def _route(request: web.Request) -> tuple[str, dict[str, str]] | None:
    for method, pattern, endpoint in _ROUTES:
        match = pattern.match(request.path)
        if match and request.method == method:
            return endpoint, match.groupdict()
    return None


async def _authenticate(request: web.Request, state: s.XState) -> str | None:
    """'user', 'app' or None (the credentials are missing or wrong)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[len("Bearer ") :].strip()
        return "app" if token and _safe_equal(token, state.bearer_token) else None
    if not header.startswith("OAuth "):
        return None
    try:
        oauth = parse_authorization(header)
    except OAuthError:
        return None
    if oauth.consumer_key != state.consumer_key or oauth.token != state.access_token:
        return None
    if oauth.version not in (None, "1.0"):
        return None
    try:
        timestamp = float(oauth.timestamp)
    except ValueError:
        return None
    if abs(state.real_now() - timestamp) > state.timestamp_window_secs:
        return None
    params: list[tuple[str, str]] = list(request.query.items())
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        params.extend((k, v) for k, v in form.items() if isinstance(v, str))
    # RFC 5849 section 3.4.1.2: the URL the request was sent to (scheme, Host, path). A client
    # that signs one host and calls another is refused, as X refuses it.
    url = f"{request.scheme}://{request.host}{request.rel_url.raw_path}"
    ok = verify_signature(
        oauth,
        method=request.method,
        url=url,
        request_params=params,
        consumer_secret=state.consumer_secret,
        token_secret=state.access_token_secret,
    )
    if not ok:
        return None
    # Only a correctly signed request spends its nonce (a forger cannot burn them).
    if not state.use_nonce(oauth.nonce, timestamp):
        return None
    return "user"


def _safe_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _rate_headers(window: s.RateWindow) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(window.limit),
        "x-rate-limit-remaining": str(max(window.remaining, 0)),
        "x-rate-limit-reset": str(int(window.reset_at)),
    }


@web.middleware
async def _x_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sandbox/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    routed = _route(request)
    if routed is None:
        return problem(404, "Not Found Error", f"Unknown route {request.method} {request.path}")
    endpoint, _ = routed
    auth = "none"
    response: web.StreamResponse | None = None
    state.request_started(endpoint)
    try:
        response, auth = await _dispatch(request, handler, state, endpoint)
        return response
    finally:
        state.request_started(endpoint, -1)
        state.record_request(
            s.RequestRecord(
                request.method,
                endpoint,
                request.path,
                response.status if response is not None else 0,  # 0: no answer sent
                auth,
                time.time(),
            )
        )


async def _dispatch(
    request: web.Request, handler: Handler, state: s.XState, endpoint: str
) -> tuple[web.StreamResponse, str]:
    """Faults, authentication, rate limit, usage cap, then the handler; adds the headers."""
    latency = state.take_latency(endpoint)
    if latency > 0:
        await asyncio.sleep(latency)
    hang = state.take_hang(endpoint)
    if hang is not None:
        await state.wait_hang(hang)
    failure = state.take_failure(endpoint)
    if failure is not None:
        if failure == 400:
            response: web.StreamResponse = invalid_request(
                [{"message": "Your media IDs are invalid.", "parameters": {}}]
            )
        elif failure == 401:
            response = unauthorized()
        else:
            title = "Service Unavailable" if failure == 503 else "Internal Server Error"
            response = problem(failure, title, title)
        response.headers.update(_rate_headers(state.peek_rate_limit(endpoint)))
        return response, "none"
    auth = await _authenticate(request, state)
    if auth is None:
        response = unauthorized()
        response.headers.update(_rate_headers(state.peek_rate_limit(endpoint)))
        return response, "none"
    if auth not in _AUTH[endpoint]:
        response = _unsupported_auth(endpoint, auth)
        response.headers.update(_rate_headers(state.peek_rate_limit(endpoint)))
        return response, auth
    if state.take_no_reset_429(endpoint):
        return _too_many_requests(), auth  # injected: a 429 without x-rate-limit-* headers
    allowed, window = state.take_rate_limit(endpoint)
    day_allowed, day = state.day_limits.take(endpoint) if allowed else (True, None)
    blocked = state.billing.blocked()
    if not allowed or not day_allowed:
        # A spent 24-hour window refuses even while the 15-minute one has calls left.
        response = _too_many_requests()
    elif (endpoint == s.CREATE_TWEET and state.posts_capped()) or (
        endpoint in _READ_ENDPOINTS and state.reads_capped()
    ):
        response = _usage_capped(state)  # the rate-limit headers may still show calls left
    elif blocked is not None:
        response = _json(payment_required(blocked, state.project_id), 402)
    else:
        request[AUTH_KEY] = auth
        response = await handler(request)
    response.headers.update(_rate_headers(window))
    day = day or state.day_limits.peek(endpoint)
    if day is not None:
        response.headers.update(day.headers())
    return response, auth


# --- helpers ------------------------------------------------------------------------------------


def _state(request: web.Request) -> s.XState:
    return request.app[STATE_KEY]


def _fields(request: web.Request, name: str) -> set[str]:
    raw = request.query.get(name, "")
    if name == "tweet.fields":  # openapi.json v2.167 names the parameter post.fields
        raw = ",".join(p for p in (raw, request.query.get("post.fields", "")) if p)
    return {part.strip() for part in raw.split(",") if part.strip()}


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return invalid_request([{"message": "Request body is not valid JSON."}])
    if not isinstance(body, dict):
        return invalid_request([{"message": "Request body must be a JSON object."}])
    return body


def _is_recent(tweet: s.Tweet, state: s.XState) -> bool:
    return datetime.fromtimestamp(state.now(), UTC) - tweet.created_at <= _PRIVATE_METRICS_AGE


def _render_tweet(
    tweet: s.Tweet, fields: set[str], poll_ids: tuple[str, ...] = ()
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": tweet.id,
        "text": tweet.text,
        "edit_history_tweet_ids": [tweet.id],
    }
    if "author_id" in fields:
        data["author_id"] = tweet.author_id
    if "created_at" in fields:
        data["created_at"] = s._iso(tweet.created_at)
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


_PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")


def _poll_fields(request: web.Request, fields: set[str]) -> set[str]:
    """``tweet.fields`` plus the poll expansion, which puts ``attachments.poll_ids`` on the post
    (data-dictionary.mdx "Poll" sample: no ``attachments`` field asked, the ids still come)."""
    return fields | (_fields(request, "expansions") & {"attachments.poll_ids"})


def _poll_ids(request: web.Request, tweet: s.Tweet) -> tuple[str, ...]:
    poll = _state(request).polls.get(tweet.id)
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


def _field_errors(
    tweet: s.Tweet, fields: set[str], request: web.Request, parameter: str, section: str
) -> list[dict[str, Any]]:
    """X's not-authorized-for-field errors for private metrics the caller may not see."""
    state = _state(request)
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
        for field in _PRIVATE_FIELDS
        if field in fields
    ]


def _includes(request: web.Request, tweets: list[s.Tweet]) -> dict[str, Any]:
    state = _state(request)
    expansions = _fields(request, "expansions")
    user_fields = _fields(request, "user.fields")
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
        tweet_fields = _fields(request, "tweet.fields") - set(_PRIVATE_FIELDS)
        refs = []
        for tweet in tweets:
            for ref in tweet.referenced_tweets:
                parent = state.tweets.get(ref["id"])
                if parent and not parent.deleted:
                    refs.append(_render_tweet(parent, tweet_fields))
        if refs:
            includes["tweets"] = refs
    if "attachments.poll_ids" in expansions:
        poll_fields = _fields(request, "poll.fields")
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
        return _param_error(
            "max_results",
            raw,
            f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
        )
    return int(raw)


def _bill_read(request: web.Request, body: dict[str, Any], operation: str) -> None:
    """Bill what a read returned: its posts at `operation`'s price, expanded users and posts as
    user and post reads; each resource once per UTC day (sandbox/x_api/billing.py)."""
    billing = _state(request).billing
    data = body.get("data")
    posts = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    billing.read(operation, "post", [str(p["id"]) for p in posts])
    includes = body.get("includes") or {}
    billing.read("user_read", "user", [str(u["id"]) for u in includes.get("users") or []])
    billing.read("post_read", "post", [str(p["id"]) for p in includes.get("tweets") or []])


def _timeline(request: web.Request, candidates: list[s.Tweet], *, owner_id: str) -> web.Response:
    """Paginated newest-first timeline with X's meta (mentions, user tweets); pages may come
    short or empty with a next_token; start_time/end_time bound it (see timeline.py). Billed as
    owned reads when the timeline is the authenticated user's own (docs.x.com pricing, Owned
    Reads)."""
    state = _state(request)
    limit = _max_results(request, 10, 5, 100)
    if isinstance(limit, web.Response):
        return limit
    since_id = request.query.get("since_id")
    until_id = request.query.get("until_id")
    for name, value in (("since_id", since_id), ("until_id", until_id)):
        if value is not None and not value.isdigit():
            return _param_error(
                name, value, f"The `{name}` query parameter value [{value}] is not valid"
            )
    bounds: dict[str, datetime | None] = {}
    for name in ("start_time", "end_time"):
        raw = request.query.get(name)
        bounds[name] = timeline.parse_time(raw) if raw is not None else None
        if raw is not None and bounds[name] is None:
            return _param_error(
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
            return _param_error(
                "pagination_token",
                token,
                f"The `pagination_token` query parameter value [{token}] is not valid",
            )
        tweets = [t for t in tweets if int(t.id) < int(below)]
    page, next_below = timeline.cut_page(tweets, limit, state.page_rng, state.short_page_rate)
    fields = _fields(request, "tweet.fields")
    errors: list[dict[str, Any]] = []
    data = []
    for tweet in page:
        field_errors = (
            _field_errors(tweet, fields, request, "id", "data")
            if fields & set(_PRIVATE_FIELDS)
            else []
        )
        if field_errors:
            errors.extend(field_errors)
            continue
        data.append(_render_tweet(tweet, _poll_fields(request, fields), _poll_ids(request, tweet)))
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
        includes = _includes(request, [t for t in page if t.id in {d["id"] for d in data}])
        if includes:
            body["includes"] = includes
    if errors:
        body["errors"] = errors
    body["meta"] = meta
    state.count_reads(len(data))
    owned = request.get(AUTH_KEY) == "user" and owner_id == state.me.id
    _bill_read(request, body, "owned_read" if owned else "post_read")
    return _json(respell(body, state.spec))


def _sniff_image(data: bytes) -> tuple[str, int | None, int | None] | None:
    """(mime type, width, height) for real PNG/JPEG/GIF/WEBP bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8\xff") and len(data) > 4:
        return "image/jpeg", None, None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", None, None
    return None


# --- handlers -------------------------------------------------------------------------------------


async def get_me(request: web.Request) -> web.Response:
    state = _state(request)
    state.billing.read("user_read", "user", [state.me.id])
    return _json({"data": state.me.to_json(_fields(request, "user.fields"))})


async def create_tweet(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    text = body.get("text")
    media = body.get("media") or {}
    reply = body.get("reply") or {}
    media_ids = media.get("media_ids") if isinstance(media, dict) else None
    if text is not None and not isinstance(text, str):
        return _param_error("text", str(text), "The `text` field must be a string.")
    text = text or ""
    # Whitespace alone is no text: X refuses it unless media carries the post (is_blank).
    if is_blank(text) and not media_ids:
        return invalid_request([{"message": "You must specify either a text or media."}])
    if not is_blank(text) and refusal(text) is not None:
        return invalid_request(
            [
                {
                    "parameters": {"text": [text]},
                    "message": "Your Tweet text is too long. For more information on how X "
                    "determines text length see https://github.com/twitter/twitter-text.",
                }
            ]
        )
    poll = body.get("poll")
    if poll is not None:  # the body's schema is checked before ids and access (polls.py)
        quotes = body.get("quote_tweet_id") is not None
        refused = polls.refusal(poll, media=media_ids is not None, quote=quotes)
        if refused is not None:
            return invalid_request([refused])
    media_keys: list[str] = []
    if media_ids is not None:
        if not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4:
            return _param_error("media.media_ids", str(media_ids), "Your media IDs are invalid.")
        for media_id in media_ids:
            item = state.media.get(str(media_id))
            if item is None or item.owner_id != state.me.id or item.expires_at <= state.now():
                return _param_error("media.media_ids", str(media_id), "Your media IDs are invalid.")
            media_keys.append(item.media_key)
    quoted = body.get("quote_tweet_id")
    if quoted is not None:
        if not access.allows(state.access_tier, "quotes"):
            return _json(access.client_forbidden(state.project_id[-8:], state.problem_base), 403)
        target = state.get_tweet(str(quoted))
        if target is None or target.deleted:
            return problem(403, "Forbidden", "You attempted to quote a Tweet that is deleted.")
    parent_id = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    summoned_reply = False
    if parent_id is not None:
        parent = state.get_tweet(str(parent_id))
        if parent is None or parent.deleted:
            return problem(
                403,
                "Forbidden",
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            )
        summoned_reply = parent.author_id != state.me.id and state.summoned_by(parent)
        if access.self_serve(state.access_tier) and not state.summoned_by(parent):
            return _json(access.not_summoned(), 403)
        excluded = reply.get("exclude_reply_user_ids") or []
        if not isinstance(excluded, list):
            return _param_error(
                "reply.exclude_reply_user_ids", str(excluded), "must be a list of user ids"
            )
        # X puts the replied-to handles before the text (state.reply_handles).
        handles = state.reply_handles(state.me.id, parent, {str(u) for u in excluded})
        if handles:
            text = " ".join(f"@{h}" for h in handles) + " " + text
    # X's duplicate check is on the text as sent (what it stores is rewritten: t.co links ...).
    sent = unicodedata.normalize("NFC", text)
    for tweet in state.posted_tweets():
        if text and tweet.source_text == sent:
            return problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
    tweet = state.create_tweet(
        state.me.id,
        text,
        in_reply_to=str(parent_id) if parent_id else None,
        media_keys=media_keys,
        quote_of=str(quoted) if quoted is not None else None,
        made_with_ai=body.get("made_with_ai") is True,
        lang=state.detect_lang(text),
    )
    if poll is not None:
        state.polls.create(tweet.id, poll["options"], poll["duration_minutes"])
    state.count_post()
    # Post: Create, with URL, summoned (docs.x.com/x-api/getting-started/pricing)
    if contains_url(text):
        state.billing.charge("post_with_url")
    else:
        state.billing.charge("reply_summoned" if summoned_reply else "post")
    drop = state.take_drop_after_create()
    if drop == "hang":
        await state.wait_hang(3600)
    if drop is not None:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # nothing more to send: the connection is gone
    return _json(
        {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}, 201
    )


async def delete_tweet(request: web.Request) -> web.Response:
    state = _state(request)
    tweet_id = request.match_info["id"]
    tweet = state.get_tweet(tweet_id)
    if tweet is None or tweet.deleted:
        return _json({"errors": [_not_found("tweet", tweet_id, "id")]}, 404)
    if tweet.author_id != state.me.id:
        return problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
    tweet.deleted = True
    return _json({"data": {"deleted": True}})


async def like(request: web.Request) -> web.Response:
    state = _state(request)
    if not access.allows(state.access_tier, "likes"):
        return _json(access.client_forbidden(state.project_id[-8:], state.problem_base), 403)
    user_id = request.match_info["id"]
    if user_id != state.me.id:
        return problem(403, "Forbidden", "You are not permitted to perform this action.")
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    tweet_id = str(body.get("tweet_id", ""))
    if not tweet_id.isdigit():
        return _param_error("tweet_id", tweet_id, "The `tweet_id` field must be a Tweet id.")
    tweet = state.get_tweet(tweet_id)
    if tweet is None or tweet.deleted:
        return _json({"errors": [_not_found("tweet", tweet_id, "tweet_id")]})
    state.like(user_id, tweet_id)
    return _json({"data": {"liked": True}})


async def mentions(request: web.Request) -> web.Response:
    state = _state(request)
    user_id = request.match_info["id"]
    if user_id not in state.users:
        return _json({"errors": [_not_found("user", user_id, "id")]})
    candidates = [
        t for t in state.tweets.values() if not t.deleted and user_id in t.mentioned_user_ids
    ]
    return _timeline(request, candidates, owner_id=user_id)


async def user_tweets(request: web.Request) -> web.Response:
    state = _state(request)
    user_id = request.match_info["id"]
    if user_id not in state.users:
        return _json({"errors": [_not_found("user", user_id, "id")]})
    candidates = [t for t in state.tweets.values() if not t.deleted and t.author_id == user_id]
    return _timeline(request, timeline.visible(state, candidates), owner_id=user_id)


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
        return _param_error(
            "ids",
            raw,
            f"The number of values in the `ids` query parameter list [{len(ids)}] "
            "is not between 1 and 100",
        )
    for one in ids:
        if not one.isdigit():
            return _param_error("ids", one, f"The `ids` query parameter value [{one}] is not valid")
    return ids


async def lookup(request: web.Request) -> web.Response:
    state = _state(request)
    ids = _ids_param(request)
    if isinstance(ids, web.Response):
        return ids
    fields = _fields(request, "tweet.fields")
    data = []
    errors: list[dict[str, Any]] = []
    found = []
    for tweet_id in dict.fromkeys(ids):
        tweet = state.get_tweet(tweet_id)
        if tweet is None or tweet.deleted:
            errors.append(_not_found("tweet", tweet_id, "ids"))
            continue
        field_errors = (
            _field_errors(tweet, fields, request, "ids", "data")
            if fields & set(_PRIVATE_FIELDS)
            else []
        )
        if field_errors:
            errors.extend(field_errors)
            continue
        data.append(_render_tweet(tweet, _poll_fields(request, fields), _poll_ids(request, tweet)))
        found.append(tweet)
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
        includes = _includes(request, found)
        if includes:
            body["includes"] = includes
    if errors:
        body["errors"] = errors
    state.count_reads(len(data))
    _bill_read(request, body, "post_read")
    return _json(respell(body, state.spec))


async def users_lookup(request: web.Request) -> web.Response:
    """``GET /2/users?ids=`` (1 to 100 ids): users found in ``data``, the others as
    resource-not-found errors. A User: Read each, once a UTC day (billing.py)."""
    state = _state(request)
    ids = _ids_param(request)
    if isinstance(ids, web.Response):
        return ids
    fields = _fields(request, "user.fields")
    data = []
    errors = []
    for user_id in dict.fromkeys(ids):
        user = state.users.get(user_id)
        if user is None:
            errors.append(_not_found("user", user_id, "ids"))
        else:
            data.append(user.to_json(fields))
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if errors:
        body["errors"] = errors
    state.billing.read("user_read", "user", [u["id"] for u in data])
    return _json(body)


async def media_upload(request: web.Request) -> web.Response:
    state = _state(request)
    category = "tweet_image"
    payload: bytes | None = None
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        part = form.get("media")
        if isinstance(part, web.FileField):
            payload = part.file.read()
        elif isinstance(part, str):
            payload = part.encode("latin-1")
        category = str(form.get("media_category", category))
        if payload is None and isinstance(form.get("media_data"), str):
            try:
                payload = base64.b64decode(str(form["media_data"]), validate=True)
            except binascii.Error:
                return _param_error("media_data", "...", "media_data is not valid base64")
    elif request.content_type == "application/json":
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        category = str(body.get("media_category", category))
        try:
            payload = base64.b64decode(str(body.get("media", "")), validate=True)
        except binascii.Error:
            return _param_error("media", "...", "media is not valid base64")
    else:
        return invalid_request([{"message": "Use multipart/form-data with a `media` part."}])
    if category not in ("tweet_image", "tweet_gif", "dm_image", "dm_gif"):
        return _param_error("media_category", category, f"media_category [{category}] is not valid")
    if not payload:
        return _param_error("media", "", "The `media` field is required.")
    sniffed = _sniff_image(payload)
    if sniffed is None:
        return invalid_request([{"message": "media type unrecognized."}])
    mime, width, height = sniffed
    limit = _GIF_LIMIT if category.endswith("_gif") and mime == "image/gif" else _IMAGE_LIMIT
    if len(payload) > limit:
        return invalid_request(
            [{"message": f"File size exceeds {limit} bytes (got {len(payload)})."}]
        )
    media = state.add_media(
        state.me.id,
        size=len(payload),
        mime_type=mime,
        media_category=category,
        width=width,
        height=height,
    )
    return _json(
        {
            "data": {
                "id": media.id,
                "media_key": media.media_key,
                "size": media.size,
                "expires_after_secs": state.media_expires_after_secs,
                "image": {"image_type": mime, "w": width, "h": height},
            }
        }
    )


async def media_metadata(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    media_id = str(body.get("id", ""))
    metadata = body.get("metadata")
    alt = metadata.get("alt_text") if isinstance(metadata, dict) else None
    text = alt.get("text") if isinstance(alt, dict) else None
    if not isinstance(text, str):
        return _param_error("metadata.alt_text.text", str(text), "alt_text.text is required")
    if len(text) > _ALT_TEXT_LIMIT:
        return _param_error(
            "metadata.alt_text.text",
            text[:20] + "...",
            f"alt_text.text is longer than {_ALT_TEXT_LIMIT} characters ({len(text)})",
        )
    media = state.media.get(media_id)
    if media is None or media.owner_id != state.me.id or media.expires_at <= state.now():
        return _param_error("id", media_id, "Your media ID is invalid.")
    media.alt_text = text
    state.billing.charge("media_metadata")
    return _json({"data": {"id": media.id, "associated_metadata": {"alt_text": {"text": text}}}})


async def usage(request: web.Request) -> web.Response:
    state = _state(request)
    raw_days = request.query.get("days", "7")
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 90:
        return _param_error(
            "days",
            raw_days,
            f"The `days` query parameter value [{raw_days}] is not between 1 and 90",
        )
    fields = _fields(request, "usage.fields")
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
    return _json({"data": data})


# --- control plane (/_sandbox/...) ----------------------------------------------------------------


async def _control_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="JSON object expected")
    return body


async def sandbox_state(request: web.Request) -> web.Response:
    return _json(_state(request).snapshot())


async def sandbox_add_user(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        user = _state(request).add_user(
            body["username"],
            name=body.get("name"),
            user_id=body.get("id"),
            followers=int(body.get("followers", 0)),
        )
    except (KeyError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json(user.to_json({"created_at", "public_metrics"}), 201)


async def sandbox_add_mention(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        tweet = _state(request).add_mention(
            str(body["author"]),
            body.get("text"),
            in_reply_to=body.get("in_reply_to"),
            lang=str(body.get("lang", "en")),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json(tweet.to_json(), 201)


async def sandbox_metrics(request: web.Request) -> web.Response:
    body = await _control_body(request)
    tweet_id = str(body.pop("tweet_id", ""))
    try:
        metrics = _state(request).advance_metrics(tweet_id, **{k: int(v) for k, v in body.items()})
    except KeyError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _json(metrics)


async def sandbox_tweets(request: web.Request) -> web.Response:
    state = _state(request)
    mine = [tweet.to_json() for tweet in state.posted_tweets(include_deleted=True)]
    return _json({"tweets": mine})


async def sandbox_likes(request: web.Request) -> web.Response:
    return _json({"likes": [vars(like) for like in _state(request).like_requests()]})


async def sandbox_requests(request: web.Request) -> web.Response:
    state = _state(request)
    return _json({"counts": state.request_counts(), "total": state.request_count()})


async def sandbox_faults(request: web.Request) -> web.Response:
    state = _state(request)
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
    return _json({"ok": True})


async def sandbox_rate_limits(request: web.Request) -> web.Response:
    body = await _control_body(request)
    try:
        window = _state(request).set_rate_limit(
            body["endpoint"],
            limit=body.get("limit"),
            window_secs=body.get("window_secs"),
            remaining=body.get("remaining"),
            reset_in=body.get("reset_in"),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing {exc}") from None
    return _json(vars(window))


async def sandbox_usage_cap(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _control_body(request)
    state.set_usage_cap(posts=body.get("posts", "keep"), reads=body.get("reads", "keep"))
    return _json(
        {"monthly_post_cap": state.monthly_post_cap, "monthly_read_cap": state.monthly_read_cap}
    )


async def sandbox_access(request: web.Request) -> web.Response:
    """Set the app's access tier: {"tier": "pay_per_use" | "basic" | "pro" | "enterprise"}."""
    state = _state(request)
    body = await _control_body(request)
    tier = body.get("tier", state.access_tier)
    if tier not in access.TIERS:
        raise web.HTTPBadRequest(text=f"tier must be one of {', '.join(access.TIERS)}")
    state.access_tier = tier
    return _json({"tier": state.access_tier})


async def sandbox_credits(request: web.Request) -> web.Response:
    """Credits and spending limit: {"credits_usd": 5} (null: unlimited), {"add": 10},
    {"spending_limit_usd": 20} (null: none). Answers the billing snapshot."""
    billing = _state(request).billing
    body = await _control_body(request)
    if "credits_usd" in body:
        billing.credits_usd = None if body["credits_usd"] is None else float(body["credits_usd"])
    if "add" in body:
        billing.add_credits(float(body["add"]))
    if "spending_limit_usd" in body:
        limit = body["spending_limit_usd"]
        billing.spending_limit_usd = None if limit is None else float(limit)
    return _json(billing.snapshot())


async def sandbox_day_limits(request: web.Request) -> web.Response:
    """A 24-hour window: {"endpoint": "POST /2/tweets", "remaining": 0, "reset_in": 3600}."""
    body = await _control_body(request)
    try:
        day = _state(request).day_limits.set(
            body["endpoint"],
            scope=body.get("scope"),
            limit=body.get("limit"),
            remaining=body.get("remaining"),
            reset_in=body.get("reset_in"),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing {exc}") from None
    return _json({"scope": day.scope, **vars(day.window)})


async def sandbox_time(request: web.Request) -> web.Response:
    state = _state(request)
    body = await _control_body(request)
    state.advance_time(float(body.get("advance", 0)))
    return _json({"now": state.now()})


async def sandbox_credentials(request: web.Request) -> web.Response:
    """The stand-in's own (fake) credentials, for a demo that starts it separately."""
    return _json(_state(request).credentials)


def create_app(state: s.XState | None = None) -> web.Application:
    """The X API v2 stand-in; drive ``state`` in-process or through /_sandbox/..."""
    app = web.Application(middlewares=[_x_middleware], client_max_size=_GIF_LIMIT + 1024 * 1024)
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
