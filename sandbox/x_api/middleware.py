"""What X does around every request on the stand-in: routing, authentication, limits, faults.

Each request is matched to its endpoint (``_ROUTES``, with the X Activity API's
``activity.ROUTES``), authenticated (OAuth 1.0a user context, signatures checked by ``oauth``;
or the app-only OAuth 2.0 bearer token), refused in X's 403 shape when the endpoint does not
accept that authentication (``_AUTH``, from X's docs for each endpoint), then passed
through the rate limits (the published 15-minute and 24-hour windows, ``limits``, with X's
`x-rate-limit-*` headers), the monthly usage caps, and pay-per-use billing's 402 when credits or
the spending limit run out (``billing``), before the handler runs. Injected faults (latency,
hangs, 400/401/5xx answers, a 429 without headers) come first, as a network or X outage would.
Every request is logged in ``XState.requests`` for tests to inspect.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandbox.x_api import activity
from sandbox.x_api import model as m
from sandbox.x_api import state as s
from sandbox.x_api.billing import payment_required
from sandbox.x_api.oauth import OAuthError, parse_authorization, verify_signature
from sandbox.x_api.responses import (
    AUTH_KEY,
    STATE_KEY,
    invalid_request,
    problem,
    respond,
    too_many_requests,
    unauthorized,
    usage_capped,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/2/users/me$"), m.ME),
    ("POST", re.compile(r"^/2/tweets$"), m.CREATE_TWEET),
    ("GET", re.compile(r"^/2/tweets$"), m.LOOKUP),
    ("DELETE", re.compile(r"^/2/tweets/(?P<id>[0-9]+)$"), m.DELETE_TWEET),
    ("POST", re.compile(r"^/2/users/(?P<id>[0-9]+)/likes$"), m.LIKE),
    ("GET", re.compile(r"^/2/users/(?P<id>[0-9]+)/mentions$"), m.MENTIONS),
    ("GET", re.compile(r"^/2/users/(?P<id>[0-9]+)/tweets$"), m.USER_TWEETS),
    ("POST", re.compile(r"^/2/media/upload$"), m.MEDIA_UPLOAD),
    ("POST", re.compile(r"^/2/media/metadata$"), m.MEDIA_METADATA),
    ("GET", re.compile(r"^/2/usage/tweets$"), m.USAGE),
    ("GET", re.compile(r"^/2/users$"), m.USERS_LOOKUP),
]


_ROUTES.extend(activity.ROUTES)  # the X Activity API and webhooks (activity_routes.py)


# Which authentication each endpoint accepts (X's docs): user = OAuth 1.0a user context,
# app = OAuth 2.0 app-only bearer token.
_AUTH: dict[str, frozenset[str]] = {
    m.ME: frozenset({"user"}),
    m.CREATE_TWEET: frozenset({"user"}),
    m.DELETE_TWEET: frozenset({"user"}),
    m.LIKE: frozenset({"user"}),
    m.MENTIONS: frozenset({"user", "app"}),
    m.USER_TWEETS: frozenset({"user", "app"}),
    m.LOOKUP: frozenset({"user", "app"}),
    m.MEDIA_UPLOAD: frozenset({"user"}),
    m.MEDIA_METADATA: frozenset({"user"}),
    m.USAGE: frozenset({"app"}),
    m.USERS_LOOKUP: frozenset({"user", "app"}),
}


_AUTH.update(activity.AUTH)


_READ_ENDPOINTS = {m.MENTIONS, m.USER_TWEETS, m.LOOKUP}


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


def _rate_headers(window: m.RateWindow) -> dict[str, str]:
    return {
        "x-rate-limit-limit": str(window.limit),
        "x-rate-limit-remaining": str(max(window.remaining, 0)),
        "x-rate-limit-reset": str(int(window.reset_at)),
    }


@web.middleware
async def x_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            m.RequestRecord(
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
        return too_many_requests(), auth  # injected: a 429 without x-rate-limit-* headers
    allowed, window = state.take_rate_limit(endpoint)
    day_allowed, day = state.day_limits.take(endpoint) if allowed else (True, None)
    blocked = state.billing.blocked()
    if not allowed or not day_allowed:
        # A spent 24-hour window refuses even while the 15-minute one has calls left.
        response = too_many_requests()
    elif (endpoint == m.CREATE_TWEET and state.posts_capped()) or (
        endpoint in _READ_ENDPOINTS and state.reads_capped()
    ):
        response = usage_capped(state)  # the rate-limit headers may still show calls left
    elif blocked is not None:
        response = respond(payment_required(blocked, state.project_id), 402)
    else:
        request[AUTH_KEY] = auth
        response = await handler(request)
    response.headers.update(_rate_headers(window))
    day = day or state.day_limits.peek(endpoint)
    if day is not None:
        response.headers.update(day.headers())
    return response, auth
