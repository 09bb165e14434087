"""chirpbase's X API v2 client: tweepy's ``Client`` plus the few calls tweepy lacks.

* OAuth 1.0a user context (``X_API_KEY``, ``X_API_SECRET``, ``X_ACCESS_TOKEN``,
  ``X_ACCESS_TOKEN_SECRET``) for everything the account does; the app bearer token
  (``X_BEARER_TOKEN``) for ``GET /2/usage/tweets``, which only accepts app-only auth.
* tweepy hardcodes ``https://api.twitter.com``; a :class:`requests.adapters.HTTPAdapter`
  mounted on tweepy's own session rewrites that prefix to ``X_API_BASE_URL`` (the sandbox),
  applies the timeouts tweepy does not set, and records every response's
  ``x-rate-limit-*`` headers per endpoint. The OAuth signature is computed, as it must be,
  for the public URL.
* ``POST /2/media/upload`` and ``POST /2/media/metadata`` (absent from tweepy 4.17) are thin
  calls on the same session with the OAuth1 auth tweepy builds.
* Blocking calls run in a small thread pool; every method is ``async``.
* Errors become the typed hierarchy below. Reads (GET) are retried on 5xx, timeouts and
  network errors; writes never are (an unknown outcome is the caller's to reconcile).
  Messages carry the endpoint, status and X's title/detail, never credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tweepy.auth import OAuth1UserHandler
from urllib3.exceptions import NewConnectionError

from worker.tweet_text import TweetTextError, validate_tweet_text

__all__ = [
    "PUBLIC_BASE_URL",
    "LookupResult",
    "MentionsPage",
    "RateLimit",
    "RewritingAdapter",
    "TweetMetrics",
    "XAuthError",
    "XBadRequest",
    "XClient",
    "XDuplicate",
    "XError",
    "XForbidden",
    "XNetworkError",
    "XNotFound",
    "XRateLimited",
    "XServerError",
    "XTimeout",
    "XTweet",
    "XUsage",
    "XUsageCapped",
    "XUser",
    "endpoint_name",
    "parse_tweets",
]

PUBLIC_BASE_URL = "https://api.twitter.com"  # what tweepy calls (and signs)
USAGE_CAPPED_TYPE = "https://api.twitter.com/2/problems/usage-capped"
_DUPLICATE_MARKERS = ("duplicate content",)
_LOOKUP_BATCH = 100
_PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")
_TWEET_FIELDS = (
    "author_id",
    "created_at",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "public_metrics",
    "entities",  # mentions: tells a mention of the account from other posts in a thread
    "note_tweet",  # the full text of a post longer than 280 characters
)

# Endpoint names (stable keys for rate limits, usage rows and errors).
_ENDPOINTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/2/users/me$"), "me"),
    ("POST", re.compile(r"^/2/tweets$"), "tweets"),
    ("DELETE", re.compile(r"^/2/tweets/[0-9]+$"), "tweets_delete"),
    ("GET", re.compile(r"^/2/tweets$"), "tweets_lookup"),
    ("POST", re.compile(r"^/2/users/[0-9]+/likes$"), "likes"),
    ("GET", re.compile(r"^/2/users/[0-9]+/mentions$"), "mentions"),
    ("GET", re.compile(r"^/2/users/[0-9]+/tweets$"), "users_tweets"),
    ("POST", re.compile(r"^/2/media/upload$"), "media_upload"),
    ("POST", re.compile(r"^/2/media/metadata$"), "media_metadata"),
    ("GET", re.compile(r"^/2/usage/tweets$"), "usage"),
)
# X's own spelling ("METHOD /path/:id") of the same endpoints, accepted by rate_limit().
_ALIASES = {
    "GET /2/users/me": "me",
    "POST /2/tweets": "tweets",
    "DELETE /2/tweets/:id": "tweets_delete",
    "GET /2/tweets": "tweets_lookup",
    "POST /2/users/:id/likes": "likes",
    "GET /2/users/:id/mentions": "mentions",
    "GET /2/users/:id/tweets": "users_tweets",
    "POST /2/media/upload": "media_upload",
    "POST /2/media/metadata": "media_metadata",
    "GET /2/usage/tweets": "usage",
}


def endpoint_name(method: str, path: str) -> str:
    """The stable name of an X endpoint ("mentions", "tweets", ...) for a request."""
    for verb, pattern, name in _ENDPOINTS:
        if verb == method.upper() and pattern.match(path):
            return name
    parts = path.split("/")
    template = "/".join(":id" if i > 2 and part.isdigit() else part for i, part in enumerate(parts))
    return f"{method.upper()} {template}"


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """The last ``x-rate-limit-*`` headers X sent for an endpoint."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None
    seen_at: datetime


@dataclass(frozen=True)
class XUser:
    id: str
    username: str
    name: str


@dataclass  # not frozen: it satisfies worker.replies.MentionLike (a protocol of plain attributes)
class XTweet:
    id: str
    text: str
    author_id: str | None = None
    author_username: str | None = None
    created_at: datetime | None = None
    conversation_id: str | None = None
    in_reply_to_user_id: str | None = None
    in_reply_to_tweet_id: str | None = None
    referenced_tweets: tuple[tuple[str, str], ...] = ()
    public_metrics: dict[str, int] = field(default_factory=dict)
    non_public_metrics: dict[str, int] | None = None
    organic_metrics: dict[str, int] | None = None
    note_text: str | None = None  # ``note_tweet.text``: the whole text of a long post
    mentioned_user_ids: tuple[str, ...] = ()  # ``entities.mentions`` (and the note's) ids


@dataclass(frozen=True)
class MentionsPage:
    """Mentions newer than ``since_id``, newest first, across the pages fetched."""

    tweets: list[XTweet]
    newest_id: str | None
    users: dict[str, XUser]
    complete: bool  # False when max_pages stopped the walk before X's last page


@dataclass(frozen=True)
class TweetMetrics:
    """Counters of one tweet: public ones always, private ones when X allowed them."""

    id: str
    likes: int
    retweets: int
    replies: int
    quotes: int
    bookmarks: int
    impressions: int
    url_link_clicks: int | None = None
    user_profile_clicks: int | None = None
    non_public_metrics: dict[str, int] | None = None
    organic_metrics: dict[str, int] | None = None


class LookupResult(list[TweetMetrics]):
    """Metrics of the tweets found (a list), plus ``missing`` ids X reported as not found."""

    def __init__(self, items: Iterable[TweetMetrics] = (), missing: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.missing: list[str] = list(missing)


@dataclass(frozen=True)
class XUsage:
    """``GET /2/usage/tweets``: posts read this billing cycle against the project's cap."""

    project_id: str | None
    project_usage: int
    project_cap: int | None
    cap_reset_day: int | None
    daily: dict[str, int]


# --- errors ---------------------------------------------------------------------------------


class XError(Exception):
    """Base of the X client's errors. ``outcome_unknown``: the request may have taken effect."""

    outcome_unknown = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.detail = detail


class XRateLimited(XError):
    """429 with (or without) ``x-rate-limit-reset``: wait until ``reset_at`` (or a while)."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reset_at = reset_at


class XUsageCapped(XError):
    """429 ``usage-capped``: the project's monthly cap is spent (rate headers may look fine)."""


class XDuplicate(XError):
    """403 duplicate content: X already has this exact tweet, i.e. it was posted."""


class XServerError(XError):
    """5xx from X. For a write, the effect is unknown."""


class XNetworkError(XError):
    """No usable answer (connection refused, reset, ...). ``outcome_unknown`` unless the
    connection was never made."""

    outcome_unknown = True

    def __init__(self, message: str, *, outcome_unknown: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.outcome_unknown = outcome_unknown


def _not_served(exc: BaseException) -> bool:
    """True for failures where X served nothing: worth retrying a read at once."""
    if isinstance(exc, XServerError):
        return True
    return isinstance(exc, XNetworkError) and not exc.outcome_unknown


class XTimeout(XNetworkError):
    """No answer within the timeout: the request may or may not have taken effect."""


class XAuthError(XError):
    """401 (credentials refused), or 403 refusals about permissions."""


class XForbidden(XAuthError):
    """403 other than duplicate content (not permitted, unsupported authentication, ...)."""


class XBadRequest(XError):
    """400 (and other 4xx): X refused the request as malformed or invalid; do not retry."""


class XNotFound(XBadRequest):
    """404, or a not-found error on the requested resource."""


# --- transport --------------------------------------------------------------------------------


class RewritingAdapter(HTTPAdapter):
    """Send ``https://api.twitter.com/...`` to ``base_url`` instead, with default timeouts,
    and report each response's rate-limit headers. Never retries (``max_retries=0``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float],
        on_response: Callable[[str, str, requests.Response], None] | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.on_response = on_response

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        rewritten = self.base_url != PUBLIC_BASE_URL and url.startswith(PUBLIC_BASE_URL + "/")
        if rewritten:
            request.url = self.base_url + url[len(PUBLIC_BASE_URL) :]
            kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        if self.on_response is not None:
            path = urlsplit(url).path
            self.on_response(request.method or "GET", path, response)
        return response


# --- the client -------------------------------------------------------------------------------

T = TypeVar("T")


def _secret(settings: Any, name: str) -> str | None:
    value = getattr(settings, name, None)
    if value is None:
        value = getattr(settings, name.upper(), None)
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter else value)


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # a malformed timestamp costs the field, never the whole page
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class XClient:
    """Async facade over tweepy for the calls chirpbase makes. See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        access_token: str,
        access_token_secret: str,
        bearer_token: str | None = None,
        base_url: str = PUBLIC_BASE_URL,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        read_attempts: int = 3,
        retry_max_wait: float = 8.0,
        on_rate_limit: Callable[[str, RateLimit], None] | None = None,
        max_workers: int = 8,
    ) -> None:
        self._client = tweepy.Client(
            bearer_token=bearer_token,
            consumer_key=api_key,
            consumer_secret=api_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            return_type=dict,
            wait_on_rate_limit=False,
        )
        self._auth = OAuth1UserHandler(api_key, api_secret, access_token, access_token_secret)
        self._bearer = bearer_token
        self.base_url = base_url.rstrip("/")
        self._adapter = RewritingAdapter(
            self.base_url,
            timeout=(connect_timeout, timeout),
            on_response=self._record_response,
            pool_maxsize=max_workers,
        )
        self._client.session.mount(PUBLIC_BASE_URL, self._adapter)
        self._rate_limits: dict[str, RateLimit] = {}
        self._lock = threading.Lock()
        self._on_rate_limit = on_rate_limit
        self._read_attempts = max(1, read_attempts)
        self._retry_max_wait = retry_max_wait
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="x-api")
        # tweepy derives the account id from the access token's "<user id>-..." prefix
        self._token_user_id = access_token.partition("-")[0]

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> XClient:
        """Build from chirpbase's Settings (``x_api_key`` ... or ``X_API_KEY`` ... names)."""
        values: dict[str, Any] = {
            "api_key": _secret(settings, "x_api_key"),
            "api_secret": _secret(settings, "x_api_secret"),
            "access_token": _secret(settings, "x_access_token"),
            "access_token_secret": _secret(settings, "x_access_token_secret"),
            "bearer_token": _secret(settings, "x_bearer_token"),
            "base_url": _secret(settings, "x_api_base_url") or PUBLIC_BASE_URL,
        }
        for option, name in (
            ("timeout", "x_timeout_s"),
            ("connect_timeout", "x_connect_timeout_s"),
        ):
            value = getattr(settings, name, None)
            if value is not None:
                values[option] = float(value)
        values.update(overrides)
        missing = [
            k
            for k in ("api_key", "api_secret", "access_token", "access_token_secret")
            if not values[k]
        ]
        if missing:
            raise ValueError(f"X credentials missing: {', '.join(missing)}")
        return cls(**values)

    # --- rate limits -----------------------------------------------------------------------

    def rate_limit(self, endpoint: str) -> RateLimit | None:
        """Last rate-limit headers seen for ``endpoint``.

        ``endpoint`` is a name such as "mentions" or X's spelling "GET /2/users/:id/mentions".
        """
        with self._lock:
            return self._rate_limits.get(_ALIASES.get(endpoint, endpoint))

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        with self._lock:
            return dict(self._rate_limits)

    def _record_response(self, method: str, path: str, response: requests.Response) -> None:
        limit = _int_header(response, "x-rate-limit-limit")
        remaining = _int_header(response, "x-rate-limit-remaining")
        reset = _int_header(response, "x-rate-limit-reset")
        if limit is None and remaining is None and reset is None:
            return
        name = endpoint_name(method, path)
        seen = RateLimit(
            limit=limit,
            remaining=remaining,
            reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
            seen_at=datetime.now(UTC),
        )
        with self._lock:
            self._rate_limits[name] = seen
        if self._on_rate_limit is not None:
            with contextlib.suppress(Exception):  # an observer must never break a call
                self._on_rate_limit(name, seen)

    # --- plumbing ----------------------------------------------------------------------------

    async def _run(self, endpoint: str, fn: Callable[[], T], *, read: bool) -> T:
        loop = asyncio.get_running_loop()

        async def once() -> T:
            try:
                return await loop.run_in_executor(self._executor, fn)
            except XError:
                raise
            except tweepy.errors.HTTPException as exc:
                raise _from_response(endpoint, exc.response) from None
            except requests.exceptions.RequestException as exc:
                raise _from_network(endpoint, exc) from None
            except tweepy.errors.TweepyException as exc:
                raise XError(f"{endpoint}: {type(exc).__name__}", endpoint=endpoint) from None

        if not read:
            return await once()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=self._retry_max_wait),
            # Retry reads X certainly did not serve (5xx, no connection). A timeout or a dropped
            # answer may have been served and billed: the caller decides, not a silent retry.
            retry=retry_if_exception(_not_served),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    def _session_call(
        self, endpoint: str, method: str, path: str, *, auth: str, **kwargs: Any
    ) -> dict[str, Any]:
        """A request tweepy has no method for, on tweepy's session (same adapter, same auth)."""
        headers = {"User-Agent": self._client.user_agent}
        request_auth = None
        if auth == "user":
            request_auth = self._auth.apply_auth()
        else:
            if not self._bearer:
                raise XAuthError(f"{endpoint}: no X bearer token configured", endpoint=endpoint)
            headers["Authorization"] = f"Bearer {self._bearer}"
        response = self._client.session.request(
            method, PUBLIC_BASE_URL + path, headers=headers, auth=request_auth, **kwargs
        )
        with response:
            if not 200 <= response.status_code < 300:
                raise _from_response(endpoint, response)
            body = response.json()
        return body if isinstance(body, dict) else {}

    # --- calls ----------------------------------------------------------------------------------

    async def me(self) -> XUser:
        body = await self._run("me", partial(self._client.get_me, user_auth=True), read=True)
        data = body.get("data") or {}
        return XUser(
            id=str(data["id"]), username=data.get("username", ""), name=data.get("name", "")
        )

    async def post_tweet(
        self,
        text: str,
        media_ids: Sequence[str] | None = None,
        reply_to: str | None = None,
        *,
        validate: bool = True,
    ) -> XTweet:
        """Create a tweet. Never retried here: on XTimeout/XNetworkError/XServerError the
        tweet may exist; reconcile (``recent_tweets``) before posting again. XDuplicate
        means X already has it."""
        if validate:
            try:
                validate_tweet_text(text)
            except TweetTextError as exc:
                raise XBadRequest(f"tweets: {exc}", endpoint="tweets", detail=str(exc)) from None
        call = partial(
            self._client.create_tweet,
            text=text,
            media_ids=list(media_ids) if media_ids else None,
            in_reply_to_tweet_id=reply_to,
            user_auth=True,
        )
        body = await self._run("tweets", call, read=False)
        data = body.get("data") or {}
        return XTweet(id=str(data["id"]), text=data.get("text", text))

    async def like(self, user_id: str, tweet_id: str) -> bool:
        """Like ``tweet_id`` as ``user_id`` (the account). X answers liked=true again for a
        tweet already liked, so repeating is harmless; not retried here all the same."""
        if str(user_id) != self._token_user_id:
            raise XBadRequest(
                f"likes: user {user_id} is not the authenticated account", endpoint="likes"
            )
        body = await self._run(
            "likes", partial(self._client.like, str(tweet_id), user_auth=True), read=False
        )
        errors = body.get("errors") or []
        if errors and not body.get("data"):
            raise _from_errors("likes", errors)
        return bool((body.get("data") or {}).get("liked"))

    async def mentions(
        self,
        user_id: str,
        since_id: str | None = None,
        max_results: int = 100,
        *,
        max_pages: int = 10,
        until_id: str | None = None,
    ) -> MentionsPage:
        """Mentions of ``user_id`` newer than ``since_id`` (and older than ``until_id``),
        newest first, following ``next_token`` for at most ``max_pages`` pages."""
        tweets: list[XTweet] = []
        users: dict[str, XUser] = {}
        newest: str | None = None
        token: str | None = None
        complete = True
        for page in range(max_pages):
            call = partial(
                self._client.get_users_mentions,
                str(user_id),
                since_id=since_id,
                until_id=until_id,
                max_results=max(5, min(100, max_results)),
                pagination_token=token,
                tweet_fields=list(_TWEET_FIELDS),
                expansions=["author_id"],
                user_fields=["username", "name"],
                user_auth=True,
            )
            body = await self._run("mentions", call, read=True)
            page_tweets, page_users = parse_tweets(body)
            users.update(page_users)
            tweets.extend(page_tweets)
            meta = body.get("meta") or {}
            if page == 0:
                newest = meta.get("newest_id")
            token = meta.get("next_token")
            if not token:
                break
        else:
            complete = token is None
        return MentionsPage(tweets=tweets, newest_id=newest, users=users, complete=complete)

    async def recent_tweets(
        self,
        user_id: str,
        max_results: int = 100,
        *,
        since_id: str | None = None,
        until_id: str | None = None,
    ) -> list[XTweet]:
        """The account's latest tweets (older than ``until_id``, to page back), newest first
        (one page; for reconciliation)."""
        call = partial(
            self._client.get_users_tweets,
            str(user_id),
            max_results=max(5, min(100, max_results)),
            since_id=since_id,
            until_id=until_id,
            tweet_fields=list(_TWEET_FIELDS),
            user_auth=True,
        )
        body = await self._run("users_tweets", call, read=True)
        return parse_tweets(body)[0][:max_results]

    async def lookup_tweets(self, ids: Iterable[str], *, private: bool = True) -> LookupResult:
        """Metrics of ``ids`` in batches of 100. With ``private``, non-public and organic
        metrics are asked too (user context); tweets X refuses them for (not ours, older than
        30 days) are fetched again with public metrics only."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, TweetMetrics] = {}
        missing: list[str] = []
        for start in range(0, len(unique), _LOOKUP_BATCH):
            batch = unique[start : start + _LOOKUP_BATCH]
            fields = ["public_metrics", *(_PRIVATE_FIELDS if private else ())]
            body = await self._lookup(batch, fields)
            refused: list[str] = []
            for error in body.get("errors") or []:
                kind = str(error.get("type", ""))
                resource = str(error.get("resource_id") or error.get("value") or "")
                if kind.endswith("/not-authorized-for-field"):
                    refused.append(resource)
                elif kind.endswith("/resource-not-found"):
                    missing.append(resource)
            for item in body.get("data") or []:
                found[str(item["id"])] = _metrics(item)
            retry = [i for i in dict.fromkeys(refused) if i not in found]
            if retry:
                again = await self._lookup(retry, ["public_metrics"])
                for item in again.get("data") or []:
                    found[str(item["id"])] = _metrics(item)
        return LookupResult((found[i] for i in unique if i in found), missing)

    async def _lookup(self, ids: list[str], fields: list[str]) -> dict[str, Any]:
        call = partial(self._client.get_tweets, ids, tweet_fields=fields, user_auth=True)
        return await self._run("tweets_lookup", call, read=True)

    async def upload_media(
        self, data: bytes, mime: str, *, media_category: str = "tweet_image"
    ) -> str:
        """``POST /2/media/upload`` (one-shot, multipart); returns the media id. Not retried:
        an orphan upload is harmless but a retry storm is not."""
        call = partial(
            self._session_call,
            "media_upload",
            "POST",
            "/2/media/upload",
            auth="user",
            files={"media": ("media", data, mime)},
            data={"media_category": media_category, "media_type": mime},
        )
        body = await self._run("media_upload", call, read=False)
        media = body.get("data") or {}
        media_id = media.get("id") or media.get("media_id_string") or media.get("media_id")
        if not media_id:
            raise XError("media_upload: X returned no media id", endpoint="media_upload")
        return str(media_id)

    async def set_alt_text(self, media_id: str, text: str) -> None:
        """``POST /2/media/metadata`` with the image's alt text (at most 1000 characters)."""
        if len(text) > 1000:
            raise XBadRequest("media_metadata: alt text is longer than 1000 characters")
        call = partial(
            self._session_call,
            "media_metadata",
            "POST",
            "/2/media/metadata",
            auth="user",
            json={"id": str(media_id), "metadata": {"alt_text": {"text": text}}},
        )
        await self._run("media_metadata", call, read=False)

    async def usage(self, *, days: int = 7) -> XUsage:
        """``GET /2/usage/tweets`` (app-only bearer token): posts read this billing cycle."""
        call = partial(
            self._session_call,
            "usage",
            "GET",
            "/2/usage/tweets",
            auth="app",
            params={
                "days": str(days),
                "usage.fields": "cap_reset_day,daily_project_usage,"
                "project_cap,project_id,project_usage",
            },
        )
        body = await self._run("usage", call, read=True)
        data = body.get("data") or {}
        daily: dict[str, int] = {}
        for entry in (data.get("daily_project_usage") or {}).get("usage") or []:
            daily[str(entry.get("date", ""))[:10]] = int(entry.get("usage") or 0)
        cap = data.get("project_cap")
        return XUsage(
            project_id=data.get("project_id"),
            project_usage=int(data.get("project_usage") or 0),
            project_cap=int(cap) if cap not in (None, "") else None,
            cap_reset_day=int(data["cap_reset_day"]) if data.get("cap_reset_day") else None,
            daily=daily,
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.session.close()

    close = aclose


# --- response mapping -----------------------------------------------------------------------------


def parse_tweets(body: Any) -> tuple[list[XTweet], dict[str, XUser]]:
    """The posts of one X API v2 response body and the users it includes, by id.

    Pure and total: ``data`` may be a list (timelines, lookups) or one object (a single post);
    entries that are not objects or have no id are skipped, malformed fields become None.
    This is how every XClient call reads posts (and what the shared reply vectors check).
    """
    if not isinstance(body, dict):
        return [], {}
    users = _users(body)
    data = body.get("data")
    items = data if isinstance(data, list) else [data]
    tweets = [_tweet(item, users) for item in items if isinstance(item, dict) and item.get("id")]
    return tweets, users


def _users(body: dict[str, Any]) -> dict[str, XUser]:
    out = {}
    includes = body.get("includes")
    found = includes.get("users") if isinstance(includes, dict) else None
    for user in found if isinstance(found, list) else []:
        if isinstance(user, dict) and user.get("id"):
            out[str(user["id"])] = XUser(
                id=str(user["id"]),
                username=str(user.get("username") or ""),
                name=str(user.get("name") or ""),
            )
    return out


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _mention_ids(entities: Any) -> list[str]:
    mentions = entities.get("mentions") if isinstance(entities, dict) else None
    return [
        str(m["id"])
        for m in (mentions if isinstance(mentions, list) else [])
        if isinstance(m, dict) and m.get("id")
    ]


def _tweet(item: dict[str, Any], users: dict[str, XUser]) -> XTweet:
    raw_refs = item.get("referenced_tweets")
    refs = tuple(
        (str(ref.get("type")), str(ref.get("id")))
        for ref in (raw_refs if isinstance(raw_refs, list) else [])
        if isinstance(ref, dict)
    )
    author = _str_or_none(item.get("author_id"))
    reply_to = next((ref_id for kind, ref_id in refs if kind == "replied_to"), None)
    raw_note = item.get("note_tweet")
    note: dict[str, Any] = raw_note if isinstance(raw_note, dict) else {}
    note_text = note.get("text") if isinstance(note.get("text"), str) else None
    mentioned = _mention_ids(item.get("entities")) + _mention_ids(note.get("entities"))
    text = item.get("text")
    public = item.get("public_metrics")
    return XTweet(
        id=str(item["id"]),
        text=text if isinstance(text, str) else "",
        author_id=author,
        author_username=users[author].username if author in users else None,
        created_at=_parse_time(item.get("created_at")),
        conversation_id=_str_or_none(item.get("conversation_id")),
        in_reply_to_user_id=_str_or_none(item.get("in_reply_to_user_id")),
        in_reply_to_tweet_id=reply_to,
        referenced_tweets=refs,
        public_metrics=dict(public) if isinstance(public, dict) else {},
        non_public_metrics=item.get("non_public_metrics"),
        organic_metrics=item.get("organic_metrics"),
        note_text=note_text,
        mentioned_user_ids=tuple(dict.fromkeys(mentioned)),
    )


def _metrics(item: dict[str, Any]) -> TweetMetrics:
    public = item.get("public_metrics") or {}
    private = item.get("non_public_metrics")
    return TweetMetrics(
        id=str(item["id"]),
        likes=int(public.get("like_count", 0)),
        retweets=int(public.get("retweet_count", 0)),
        replies=int(public.get("reply_count", 0)),
        quotes=int(public.get("quote_count", 0)),
        bookmarks=int(public.get("bookmark_count", 0)),
        impressions=int(public.get("impression_count", 0)),
        url_link_clicks=int(private["url_link_clicks"])
        if private and "url_link_clicks" in private
        else None,
        user_profile_clicks=(
            int(private["user_profile_clicks"])
            if private and "user_profile_clicks" in private
            else None
        ),
        non_public_metrics=private,
        organic_metrics=item.get("organic_metrics"),
    )


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(body: dict[str, Any]) -> str:
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            if message:
                parts.append(str(message))
    return ": ".join(dict.fromkeys(parts))[:500]


def _from_response(endpoint: str, response: requests.Response) -> XError:
    """The typed error for a non-2xx answer (secrets never appear: only X's own words)."""
    status = response.status_code
    body = _problem(response)
    described = _describe(body)
    message = f"{endpoint}: HTTP {status}" + (f" {described}" if described else "")
    common: dict[str, Any] = {"endpoint": endpoint, "status": status, "detail": described or None}
    if status == 429:
        if body.get("type") == USAGE_CAPPED_TYPE or body.get("title") == "UsageCapExceeded":
            return XUsageCapped(message, **common)
        reset = _int_header(response, "x-rate-limit-reset")
        return XRateLimited(
            message,
            reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
            **common,
        )
    if status >= 500:
        error = XServerError(message, **common)
        error.outcome_unknown = response.request is not None and response.request.method != "GET"
        return error
    if status == 401:
        return XAuthError(message, **common)
    if status == 403:
        codes = {e.get("code") for e in body.get("errors") or [] if isinstance(e, dict)}
        if 187 in codes or any(marker in described.lower() for marker in _DUPLICATE_MARKERS):
            return XDuplicate(message, **common)
        return XForbidden(message, **common)
    if status == 404:
        return XNotFound(message, **common)
    return XBadRequest(message, **common)


def _from_errors(endpoint: str, errors: list[dict[str, Any]]) -> XError:
    described = _describe({"errors": errors})
    kinds = {str(e.get("type", "")) for e in errors if isinstance(e, dict)}
    if any(kind.endswith("/resource-not-found") for kind in kinds):
        return XNotFound(f"{endpoint}: {described}", endpoint=endpoint, detail=described)
    return XBadRequest(f"{endpoint}: {described}", endpoint=endpoint, detail=described)


def _from_network(endpoint: str, exc: requests.exceptions.RequestException) -> XError:
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return XTimeout(f"{endpoint}: connect timeout", endpoint=endpoint, outcome_unknown=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return XTimeout(f"{endpoint}: no answer within the timeout", endpoint=endpoint)
    never_sent = isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc)
    return XNetworkError(
        f"{endpoint}: {name}" + (" (could not connect)" if never_sent else " (connection lost)"),
        endpoint=endpoint,
        outcome_unknown=not never_sent,
    )


def _never_connected(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        nested = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = reason if isinstance(reason, BaseException) else nested or current.__cause__
    return False
