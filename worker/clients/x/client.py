"""XClient: the calls chirpbase makes on X, async, on top of tweepy (see the package docstring).

Longer than 600 lines because it is one class, a method per X endpoint, and the methods share
its error mapping, rate-limit bookkeeping and retry rules: split across modules they would
reach into each other's private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
import tweepy
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tweepy.auth import OAuth1UserHandler

from worker.clients.x.errors import (
    FIELD_REFUSED,
    RESOURCE_NOT_FOUND,
    XAuthError,
    XBadRequest,
    XError,
    XNotSent,
    error_from_errors,
    error_from_network,
    error_from_response,
    not_served,
    problem_type,
)
from worker.clients.x.polls import POLL_EXPANSION, POLL_FIELDS, polls_by_post
from worker.clients.x.shapes import (
    LookupResult,
    MentionsPage,
    OwnTimeline,
    RateLimit,
    TimelinePage,
    TweetMetrics,
    XTweet,
    XUsage,
    XUser,
    older_names,
    parse_metrics,
    parse_tweets,
    parse_users,
)
from worker.clients.x.transport import (
    ENDPOINT_ALIASES,
    PUBLIC_BASE_URL,
    endpoint_name,
    int_header,
    x_session,
)
from worker.content.tweet_text import TweetTextError, validate_tweet_text

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
    "lang",  # which posts get a reply draft (configs.conversation.languages)
    "attachments",  # media keys: a post with media has X's media link appended to its text
)


T = TypeVar("T")


def _secret(settings: Any, name: str) -> str | None:
    value = getattr(settings, name, None)
    if value is None:
        value = getattr(settings, name.upper(), None)
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if getter else value)


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
        # tweepy's own session, replaced by one that sends (and so signs) to base_url
        self._client.session = x_session(
            self.base_url,
            timeout=(connect_timeout, timeout),
            on_response=self._record_response,
            pool_maxsize=max_workers,
        )
        self._rate_limits: dict[str, RateLimit] = {}
        self._lock = threading.Lock()
        self._on_rate_limit = on_rate_limit
        self._read_attempts = max(1, read_attempts)
        self._retry_max_wait = retry_max_wait
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="x-api")
        self._call_s = connect_timeout + timeout  # the longest a call can take to fail
        self._write_deadline: float | None = None
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
            return self._rate_limits.get(ENDPOINT_ALIASES.get(endpoint, endpoint))

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        with self._lock:
            return dict(self._rate_limits)

    def _record_response(self, method: str, path: str, response: requests.Response) -> None:
        limit = int_header(response, "x-rate-limit-limit")
        remaining = int_header(response, "x-rate-limit-remaining")
        reset = int_header(response, "x-rate-limit-reset")
        day: tuple[str, int | None, int | None, int | None] | None = None
        for scope in ("app", "user"):
            prefix = f"x-{scope}-limit-24hour"
            day_limit = int_header(response, f"{prefix}-limit")
            day_remaining = int_header(response, f"{prefix}-remaining")
            day_reset = int_header(response, f"{prefix}-reset")
            if day_limit is not None or day_remaining is not None or day_reset is not None:
                day = (scope, day_limit, day_remaining, day_reset)
                break
        if limit is None and remaining is None and reset is None and day is None:
            return
        name = endpoint_name(method, path)
        seen = RateLimit(
            limit=limit,
            remaining=remaining,
            reset_at=_epoch(reset),
            seen_at=datetime.now(UTC),
            day_scope=day[0] if day else None,
            day_limit=day[1] if day else None,
            day_remaining=day[2] if day else None,
            day_reset_at=_epoch(day[3]) if day else None,
        )
        with self._lock:
            self._rate_limits[name] = seen
        if self._on_rate_limit is not None:
            with contextlib.suppress(Exception):  # an observer must never break a call
                self._on_rate_limit(name, seen)

    # --- shutdown ----------------------------------------------------------------------------

    @property
    def call_timeout_s(self) -> float:
        """Connect plus read timeout: how long a call can take before it fails."""
        return self._call_s

    def refuse_writes_after(self, deadline: float | None) -> None:
        """From now on, start no write that could not end by ``deadline`` (``time.monotonic``);
        such calls raise :class:`XNotSent`. None lifts the limit."""
        self._write_deadline = deadline

    def _check_write_allowed(self, endpoint: str) -> None:
        deadline = self._write_deadline
        if deadline is not None and time.monotonic() + self._call_s > deadline:
            raise XNotSent(
                f"{endpoint}: not sent, the worker is stopping and the call could not end in time",
                endpoint=endpoint,
            )

    async def _write(self, fn: Callable[[], T]) -> T:
        """Run a write in its thread; a cancellation waits for it to end, then returns its result.

        Once a request is on its way to X, abandoning it would leave its effect unknown to
        everyone: the job would be handed back while the post may still be created. So the
        call is always seen through (it ends within the timeouts), and the caller gets its
        outcome and records it; the cancellation is then dropped for this task."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn)
        cancelled = False
        while not future.done():
            try:
                await asyncio.wait([future])  # a cancelled wait leaves the call running
            except asyncio.CancelledError:
                cancelled = True  # see the call through, then carry on with its outcome
        if cancelled:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        return future.result()

    # --- plumbing ----------------------------------------------------------------------------

    async def _run(self, endpoint: str, fn: Callable[[], T], *, read: bool) -> T:
        loop = asyncio.get_running_loop()

        async def once() -> T:
            try:
                if read:
                    return await loop.run_in_executor(self._executor, fn)
                self._check_write_allowed(endpoint)
                return await self._write(fn)
            except XError:
                raise
            except tweepy.errors.HTTPException as exc:
                raise error_from_response(endpoint, exc.response) from None
            except requests.exceptions.RequestException as exc:
                raise error_from_network(endpoint, exc) from None
            except tweepy.errors.TweepyException as exc:
                raise XError(f"{endpoint}: {type(exc).__name__}", endpoint=endpoint) from None

        if not read:
            return await once()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential_jitter(multiplier=0.2, max=self._retry_max_wait),
            # Retry reads X certainly did not serve (5xx, no connection). A timeout or a dropped
            # answer may have been served and billed: the caller decides, not a silent retry.
            retry=retry_if_exception(not_served),
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
            method, self.base_url + path, headers=headers, auth=request_auth, **kwargs
        )
        with response:
            if not 200 <= response.status_code < 300:
                raise error_from_response(endpoint, response)
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
        quote_tweet_id: str | None = None,
        made_with_ai: bool = False,
        validate: bool = True,
        poll_options: Sequence[str] | None = None,
        poll_duration_minutes: int | None = None,
    ) -> XTweet:
        """Create a tweet (``POST /2/tweets``). Never retried here: on XTimeout/XNetworkError/
        XServerError the tweet may exist; reconcile (``timeline_page``) before posting again.
        XDuplicate means X already has it.

        A thin call on tweepy's session (tweepy's ``create_tweet`` has no ``made_with_ai``, the
        2026 field that discloses AI-generated media; openapi.json CreatePostsRequest)."""
        if validate:
            try:
                validate_tweet_text(text)
            except TweetTextError as exc:
                raise XBadRequest(f"tweets: {exc}", endpoint="tweets", detail=str(exc)) from None
        body: dict[str, Any] = {"text": text}
        if media_ids:
            body["media"] = {"media_ids": [str(m) for m in media_ids]}
        if reply_to:
            body["reply"] = {"in_reply_to_tweet_id": str(reply_to)}
        if quote_tweet_id:
            body["quote_tweet_id"] = str(quote_tweet_id)
        if made_with_ai:
            body["made_with_ai"] = True
        if poll_options:
            # As tweepy's create_tweet(poll_options=..., poll_duration_minutes=...) sends it.
            body["poll"] = {
                "options": list(poll_options),
                "duration_minutes": poll_duration_minutes,
            }
        call = partial(self._session_call, "tweets", "POST", "/2/tweets", auth="user", json=body)
        answer = await self._run("tweets", call, read=False)
        data = answer.get("data") or {}
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
            raise error_from_errors("likes", errors)
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
                # No `author_id` expansion: every included user is a User: Read ($0.010, ten
                # times the owned read of the mention itself); replies keep the author's id.
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
        return MentionsPage(
            tweets=tweets, newest_id=newest, users=users, complete=complete, requests=page + 1
        )

    async def users(self, ids: Iterable[str], *, details: bool = False) -> list[XUser]:
        """``GET /2/users?ids=...`` (100 a request): who these accounts are; with ``details``,
        since when and how many follow them (``created_at``, ``public_metrics``, for the reply
        filters). X bills a User: Read ($0.010) per user returned, once a UTC day, whatever the
        fields; unknown ids are left out."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: list[XUser] = []
        fields = ["username", "name", *(("created_at", "public_metrics") if details else ())]
        for start in range(0, len(unique), _LOOKUP_BATCH):
            call = partial(
                self._client.get_users,
                ids=unique[start : start + _LOOKUP_BATCH],
                user_fields=fields,
                user_auth=True,
            )
            body = await self._run("users_lookup", call, read=True)
            found.extend(parse_users(body.get("data")))
        return found

    async def posts(self, ids: Iterable[str]) -> list[XTweet]:
        """``GET /2/tweets?ids=...`` (100 a request): the posts' text, author, conversation and
        language, for the context of a reply. A Posts: Read ($0.005) per post returned, once a
        UTC day; posts X does not return (deleted, protected) are left out. No expansions: an
        included author would be a User: Read ($0.010) more."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        found: list[XTweet] = []
        for start in range(0, len(unique), _LOOKUP_BATCH):
            body = await self._lookup(unique[start : start + _LOOKUP_BATCH], list(_TWEET_FIELDS))
            found.extend(parse_tweets(body)[0])
        return found

    async def timeline_page(
        self,
        user_id: str,
        *,
        max_results: int = 100,
        pagination_token: str | None = None,
        start_time: datetime | None = None,
        since_id: str | None = None,
        until_id: str | None = None,
    ) -> TimelinePage:
        """One page of ``user_id``'s posts, newest first (``GET /2/users/:id/tweets``).

        Pages may be short or empty and still carry ``next_token``: only its absence ends the
        timeline. ``start_time`` (second granularity, inclusive) bounds it to posts from then.
        A post just created can be missing from it for a while (the timeline is eventually
        consistent); a lookup by id is not."""
        call = partial(
            self._client.get_users_tweets,
            str(user_id),
            max_results=max(5, min(100, max_results)),
            pagination_token=pagination_token,
            start_time=start_time,
            since_id=since_id,
            until_id=until_id,
            tweet_fields=list(_TWEET_FIELDS),
            user_auth=True,
        )
        body = await self._run("users_tweets", call, read=True)
        meta = body.get("meta") if isinstance(body, dict) else None
        token = meta.get("next_token") if isinstance(meta, dict) else None
        return TimelinePage(parse_tweets(body)[0], str(token) if token else None)

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
            polls = polls_by_post(body)
            refused: list[str] = []
            for error in body.get("errors") or []:
                kind = problem_type(error)
                resource = str(error.get("resource_id") or error.get("value") or "")
                if kind in FIELD_REFUSED:
                    refused.append(resource)
                elif kind == RESOURCE_NOT_FOUND:
                    missing.append(resource)
            for item in body.get("data") or []:
                metrics = parse_metrics(item)
                found[metrics.id] = replace(metrics, poll=polls.get(metrics.id))
            if "" in refused:
                # v2.167's field-unauthorized problem names no post: ask again for every post
                # of the batch X neither returned nor reported missing.
                refused = [i for i in batch if i not in found and i not in missing]
            retry = [i for i in dict.fromkeys(refused) if i not in found]
            if retry:
                again = await self._lookup(retry, ["public_metrics"])
                polls = polls_by_post(again)
                for item in again.get("data") or []:
                    metrics = parse_metrics(item)
                    found[str(item["id"])] = replace(metrics, poll=polls.get(metrics.id))
        return LookupResult((found[i] for i in unique if i in found), missing)

    async def own_timeline(
        self,
        user_id: str,
        since: datetime,
        *,
        max_results: int = 100,
        max_pages: int = 4,
        max_posts: int | None = None,
    ) -> OwnTimeline:
        """The account's own posts created after ``since`` with their public metrics, newest
        first, from ``GET /2/users/:id/tweets`` (an owned read: $0.001 a post instead of a
        lookup's $0.005, docs.x.com/x-api/getting-started/pricing "Owned Reads").

        Pages are followed until one reaches past ``since``, X has no next page, or
        ``max_pages`` were read. A page may be short or empty and still carry a next token
        (X's timelines do this): only the timestamps decide. ``served_ids`` are every post X
        returned (each is billed), ``metrics`` only those after ``since``. ``max_posts`` bounds
        what is served in all (what the caller reserved): no page asks for more than is left."""
        metrics: list[TweetMetrics] = []
        served: list[str] = []
        token: str | None = None
        reached = False
        pages = 0
        for pages in range(1, max_pages + 1):
            left = max_results if max_posts is None else min(max_results, max_posts - len(served))
            if left < 5:  # X's smallest page: asking would bill more than was reserved
                pages -= 1
                break
            call = partial(
                self._client.get_users_tweets,
                str(user_id),
                max_results=max(5, min(100, left)),
                pagination_token=token,
                tweet_fields=["created_at", "public_metrics"],
                expansions=[POLL_EXPANSION],
                poll_fields=POLL_FIELDS,
                user_auth=True,
            )
            body = await self._run("users_tweets", call, read=True)
            polls = polls_by_post(body)
            items = [
                older_names(i)
                for i in body.get("data") or []
                if isinstance(i, dict) and i.get("id")
            ]
            served.extend(str(i["id"]) for i in items)
            for item in items:
                created = parse_tweets({"data": item})[0]
                moment = created[0].created_at if created else None
                if moment is not None and moment < since:
                    reached = True
                    continue
                metrics.append(replace(parse_metrics(item), poll=polls.get(str(item["id"]))))
            token = (body.get("meta") or {}).get("next_token")
            if reached or not token:
                break
        return OwnTimeline(metrics, served_ids=served, pages=pages, complete=reached or not token)

    async def _lookup(self, ids: list[str], fields: list[str]) -> dict[str, Any]:
        call = partial(
            self._client.get_tweets,
            ids,
            tweet_fields=fields,
            expansions=[POLL_EXPANSION],
            poll_fields=POLL_FIELDS,
            user_auth=True,
        )
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


def _epoch(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None
