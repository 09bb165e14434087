"""XClient through the real tweepy client against the X stand-in on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from sandbox.x_api import (
    CREATE_TWEET,
    LIKE,
    LOOKUP,
    MEDIA_METADATA,
    MEDIA_UPLOAD,
    MENTIONS,
    USER_TWEETS,
    XState,
    create_app,
)
from tests.waiting import wait_for
from worker.clients.x import (
    RateLimit,
    XAuthError,
    XBadRequest,
    XClient,
    XDuplicate,
    XNetworkError,
    XNotSent,
    XRateLimited,
    XServerError,
    XTimeout,
    XTweet,
    XUsageCapped,
    endpoint_name,
)


def png(size: int = 64) -> bytes:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 4, 4)
    return header + b"\x08\x02\x00\x00\x00" + b"\x00" * max(0, size - len(header) - 5)


class Env:
    def __init__(self, state: XState, url: str) -> None:
        self.state = state
        self.url = url
        self.clients: list[XClient] = []

    def client(self, **overrides: Any) -> XClient:
        kwargs: dict[str, Any] = {
            "api_key": self.state.consumer_key,
            "api_secret": self.state.consumer_secret,
            "access_token": self.state.access_token,
            "access_token_secret": self.state.access_token_secret,
            "bearer_token": self.state.bearer_token,
            "base_url": self.url,
            "timeout": 5.0,
            "connect_timeout": 2.0,
            "read_attempts": 2,
            "retry_max_wait": 0.01,
            **overrides,
        }
        client = XClient(**kwargs)
        self.clients.append(client)
        return client


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = XState()
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    environment = Env(state, f"http://127.0.0.1:{runner.addresses[0][1]}")
    yield environment
    state.release_hangs()
    for client in environment.clients:
        await client.aclose()
    await runner.cleanup()


async def test_from_settings_and_me(env: Env) -> None:
    state = env.state
    settings = SimpleNamespace(
        x_api_key=SecretStr(state.consumer_key),
        x_api_secret=SecretStr(state.consumer_secret),
        x_access_token=SecretStr(state.access_token),
        x_access_token_secret=SecretStr(state.access_token_secret),
        x_bearer_token=SecretStr(state.bearer_token),
        x_api_base_url=env.url,
    )
    client = XClient.from_settings(settings)
    env.clients.append(client)
    me = await client.me()
    assert (me.id, me.username, me.name) == (state.me.id, "chirpbase_bot", "Chirpbase Bot")
    with pytest.raises(ValueError, match="credentials missing: api_key"):
        XClient.from_settings(SimpleNamespace(x_api_key=None))


async def test_post_reply_and_duplicate(env: Env) -> None:
    client = env.client()
    tweet = await client.post_tweet("hello from chirpbase")
    assert env.state.get_tweet(tweet.id) is not None
    reply = await client.post_tweet("and a follow-up", reply_to=tweet.id)
    stored = env.state.get_tweet(reply.id)
    assert stored is not None and stored.conversation_id == tweet.id
    with pytest.raises(XDuplicate) as info:
        await client.post_tweet("hello from chirpbase")
    assert info.value.status == 403 and info.value.endpoint == "tweets"
    assert len(env.state.posted_tweets()) == 2


async def test_too_long_text(env: Env) -> None:
    client = env.client()
    with pytest.raises(XBadRequest, match="weighted length 282"):
        await client.post_tweet("日" * 141)
    assert env.state.request_count(CREATE_TWEET) == 0  # refused before any request
    with pytest.raises(XBadRequest, match="too long") as info:
        await client.post_tweet("日" * 141, validate=False)  # and X refuses it too
    assert info.value.status == 400
    assert env.state.posted_tweets() == []


async def test_like_twice(env: Env) -> None:
    state = env.state
    state.access_tier = "enterprise"  # likes are Enterprise-only since 2026-04-20
    state.add_user("alice")
    mention = state.add_mention("alice", "hi bot")
    client = env.client()
    assert await client.like(state.me.id, mention.id) is True
    assert await client.like(state.me.id, mention.id) is True
    assert len(state.like_requests(mention.id)) == 2
    assert mention.metrics["like_count"] == 1
    with pytest.raises(XBadRequest):
        await client.like(state.me.id, "999999")  # unknown tweet
    with pytest.raises(XBadRequest):
        await client.like("123", mention.id)  # not the authenticated account


async def test_mentions_follow_pagination(env: Env) -> None:
    state = env.state
    state.add_user("bob")
    ours = state.create_tweet(state.me.id, "ours")
    mentions = [
        state.add_mention("bob", f"m{i}", in_reply_to=ours.id if i % 2 else None) for i in range(12)
    ]
    client = env.client()
    page = await client.mentions(state.me.id, max_results=5)
    assert [t.id for t in page.tweets] == [m.id for m in reversed(mentions)]
    assert page.newest_id == mentions[-1].id and page.complete
    assert state.request_count(MENTIONS) == 3
    reply = page.tweets[0]
    # No author expansion is asked (a User: Read each): the id is there, the username is not.
    assert reply.author_id == state.find_user("bob").id and reply.author_username is None
    assert reply.in_reply_to_tweet_id == ours.id and reply.conversation_id == ours.id
    assert isinstance(reply.created_at, datetime)
    plain = page.tweets[1]
    assert plain.in_reply_to_tweet_id is None
    newer = await client.mentions(state.me.id, since_id=page.newest_id)
    assert newer.tweets == [] and newer.newest_id is None
    later = state.add_mention("bob", "one more")
    newer = await client.mentions(state.me.id, since_id=page.newest_id)
    assert [t.id for t in newer.tweets] == [later.id]
    capped = await client.mentions(state.me.id, max_results=5, max_pages=1)
    assert len(capped.tweets) == 5 and not capped.complete


async def whole_timeline(client: XClient, user_id: str, **kwargs: Any) -> list[XTweet]:
    """Every page of a timeline: pages may be short or empty, only a missing token ends it."""
    tweets: list[XTweet] = []
    token = None
    for _ in range(100):
        page = await client.timeline_page(user_id, pagination_token=token, **kwargs)
        tweets += page.tweets
        token = page.next_token
        if token is None:
            return tweets
    raise AssertionError("the timeline never ended")


async def test_timeline_pages_until_no_next_token_and_after_the_lag(env: Env) -> None:
    state = env.state
    state.short_page_rate = 0.5  # many short and empty pages
    client = env.client()
    posted = [await client.post_tweet(f"tweet {i}") for i in range(12)]
    assert await whole_timeline(client, state.me.id) == []  # not on the timeline yet
    state.advance_time(state.timeline_lag_s)
    recent = await whole_timeline(client, state.me.id, max_results=5)
    assert [t.text for t in recent] == [f"tweet {i}" for i in reversed(range(12))]
    assert recent[0].id == posted[-1].id and recent[0].created_at is not None
    assert state.request_count(USER_TWEETS) > 1 + 12 // 5  # short pages cost extra requests


async def test_timeline_start_time_bounds_the_walk(env: Env) -> None:
    state = env.state
    client = env.client()
    old = [state.create_tweet(state.me.id, f"old {i}") for i in range(3)]
    state.advance_time(3600)
    since = datetime.fromtimestamp(state.now(), UTC)
    new = [state.create_tweet(state.me.id, f"new {i}") for i in range(3)]
    state.advance_time(state.timeline_lag_s)
    found = await whole_timeline(client, state.me.id, start_time=since)
    assert [t.id for t in found] == [t.id for t in reversed(new)]
    everything = await whole_timeline(client, state.me.id)
    assert [t.id for t in everything] == [t.id for t in reversed(old + new)]


async def test_rewritten_text_urls_and_media_keys_are_parsed(env: Env) -> None:
    state = env.state
    client = env.client()
    media_id = await client.upload_media(png(), "image/png")
    sent = "Q&A at chirpbase.dev <3"
    tweet = await client.post_tweet(sent, media_ids=[media_id])
    assert tweet.text != sent and "&amp;" in tweet.text and "&lt;3" in tweet.text
    state.advance_time(state.timeline_lag_s)
    (read,) = await whole_timeline(client, state.me.id)
    assert read.media_keys == (f"3_{media_id}",)
    link, media_link = read.urls
    assert (link.expanded_url, link.display_url) == ("http://chirpbase.dev", "chirpbase.dev")
    assert link.url.startswith("https://t.co/") and link.url in read.text
    assert media_link.media_key == f"3_{media_id}" and read.text.endswith(" " + media_link.url)
    assert media_link.expanded_url == f"https://x.com/chirpbase_bot/status/{read.id}/photo/1"


async def test_lookup_batches_and_private_metrics(env: Env) -> None:
    state = env.state
    state.add_user("carol")
    mine = [state.create_tweet(state.me.id, f"t{i}") for i in range(140)]
    theirs = state.add_mention("carol", "someone else's tweet")
    state.advance_metrics(mine[0].id, like_count=7, impression_count=90, url_link_clicks=2)
    state.advance_metrics(theirs.id, like_count=3)
    client = env.client()
    ids = [t.id for t in mine] + [theirs.id, "42"]
    result = await client.lookup_tweets(ids)
    by_id = {m.id: m for m in result}
    assert len(result) == 141 and result.missing == ["42"]
    assert (by_id[mine[0].id].likes, by_id[mine[0].id].impressions) == (7, 90)
    assert by_id[mine[0].id].url_link_clicks == 2
    assert by_id[mine[0].id].organic_metrics is not None
    assert by_id[theirs.id].likes == 3 and by_id[theirs.id].non_public_metrics is None
    # two batches of <=100 ids, plus one public-only retry for the tweet that is not ours
    assert state.request_count(LOOKUP) == 3


async def test_upload_alt_text_and_post_with_media(env: Env) -> None:
    state = env.state
    client = env.client()
    media_id = await client.upload_media(png(), "image/png")
    await client.set_alt_text(media_id, "a tiny grey square")
    assert state.media[media_id].alt_text == "a tiny grey square"
    tweet = await client.post_tweet("look", media_ids=[media_id])
    stored = state.get_tweet(tweet.id)
    assert stored is not None and stored.media_keys == [f"3_{media_id}"]
    with pytest.raises(XBadRequest):
        await client.upload_media(b"plain text", "image/png")
    with pytest.raises(XBadRequest):
        await client.set_alt_text("12345", "no such media")
    assert state.request_count(MEDIA_UPLOAD) == 2 and state.request_count(MEDIA_METADATA) == 2


async def test_rate_limit_headers_captured_and_429(env: Env) -> None:
    state = env.state
    seen: list[tuple[str, RateLimit]] = []
    client = env.client(on_rate_limit=lambda name, rl: seen.append((name, rl)))
    state.set_rate_limit(MENTIONS, limit=3, window_secs=600)
    await client.mentions(state.me.id)
    limit = client.rate_limit("mentions")
    assert limit is not None and (limit.limit, limit.remaining) == (3, 2)
    assert client.rate_limit("GET /2/users/:id/mentions") == limit
    assert limit.reset_at is not None and limit.reset_at > datetime.now(UTC)
    assert seen[-1] == ("mentions", limit)
    state.exhaust_rate_limit(MENTIONS, reset_in=300)
    with pytest.raises(XRateLimited) as info:
        await client.mentions(state.me.id)
    reset_at = info.value.reset_at
    assert reset_at is not None and 290 <= reset_at.timestamp() - time.time() <= 301
    assert info.value.endpoint == "mentions"
    assert state.request_count(MENTIONS) == 2  # a 429 is not retried
    post_limit = client.rate_limit("tweets")
    assert post_limit is None
    state.rate_limit_without_reset_next(CREATE_TWEET)
    with pytest.raises(XRateLimited) as bare:
        await client.post_tweet("rate limited without reset")
    assert bare.value.reset_at is None


async def test_usage_cap(env: Env) -> None:
    state = env.state
    client = env.client()
    state.set_usage_cap(posts=0)
    with pytest.raises(XUsageCapped):
        await client.post_tweet("capped")
    limit = client.rate_limit("tweets")
    assert limit is not None and limit.remaining and limit.remaining > 0
    state.set_usage_cap(reads=0)
    with pytest.raises(XUsageCapped):
        await client.lookup_tweets(["1"])


async def test_server_errors_post_not_retried_reads_retried(env: Env) -> None:
    state = env.state
    client = env.client()
    state.fail_next(CREATE_TWEET, 1, status=503)
    with pytest.raises(XServerError) as info:
        await client.post_tweet("maybe")
    assert info.value.status == 503 and info.value.outcome_unknown
    assert state.request_count(CREATE_TWEET) == 1
    state.fail_next(USER_TWEETS, 1, status=500)
    await client.timeline_page(state.me.id)
    assert state.request_count(USER_TWEETS) == 2
    state.fail_next(USER_TWEETS, 5, status=503)
    with pytest.raises(XServerError):
        await client.timeline_page(state.me.id)
    assert state.request_count(USER_TWEETS) == 4  # read_attempts=2


async def test_timeout_is_outcome_unknown(env: Env) -> None:
    state = env.state
    client = env.client(timeout=0.3, read_attempts=1)
    state.hang_next(CREATE_TWEET, seconds=30)
    with pytest.raises(XTimeout) as info:
        await client.post_tweet("slow")
    assert info.value.outcome_unknown and isinstance(info.value, XNetworkError)
    assert state.posted_tweets() == []  # the stand-in hung before doing anything


async def test_dropped_response_after_create(env: Env) -> None:
    state = env.state
    client = env.client(timeout=0.5)
    state.drop_after_create_next(mode="reset")
    with pytest.raises(XNetworkError) as info:
        await client.post_tweet("posted but unanswered")
    assert info.value.outcome_unknown and not isinstance(info.value, XTimeout)
    assert [t.text for t in state.posted_tweets()] == ["posted but unanswered"]
    assert state.request_count(CREATE_TWEET) == 1  # not retried behind our back
    state.drop_after_create_next(mode="hang")
    with pytest.raises(XTimeout):
        await client.post_tweet("posted, then silence")
    # the handler can reconcile: the tweet is on the account's timeline (once the lag passed)
    state.advance_time(state.timeline_lag_s)
    recent = await whole_timeline(client, state.me.id, max_results=5)
    assert "posted, then silence" in [t.text for t in recent]


async def test_auth_errors_do_not_leak_secrets(env: Env) -> None:
    secret = "super-secret-consumer-value"
    client = env.client(api_secret=secret)
    with pytest.raises(XAuthError) as info:
        await client.me()
    text = f"{info.value!r} {info.value} {info.value.detail}"
    assert info.value.status == 401
    for value in (secret, env.state.access_token_secret, env.state.access_token):
        assert value not in text
    assert env.state.request_count() == 1  # 401s are not retried


async def test_connection_refused_is_known_not_sent(env: Env) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = env.client(base_url=f"http://127.0.0.1:{port}", read_attempts=1)
    with pytest.raises(XNetworkError) as info:
        await client.post_tweet("nobody listens")
    assert not info.value.outcome_unknown


async def test_usage(env: Env) -> None:
    state = env.state
    client = env.client()
    await client.post_tweet("one")
    state.advance_time(state.timeline_lag_s)
    await whole_timeline(client, state.me.id)
    usage = await client.usage()
    assert usage.project_usage == 1 and usage.project_id == state.project_id
    assert sum(usage.daily.values()) == 1
    assert client.rate_limit("usage") is not None
    no_bearer = env.client(bearer_token=None)
    with pytest.raises(XAuthError):
        await no_bearer.usage()


def test_endpoint_names() -> None:
    assert endpoint_name("GET", "/2/users/123/mentions") == "mentions"
    assert endpoint_name("post", "/2/users/123/likes") == "likes"
    assert endpoint_name("DELETE", "/2/tweets/9") == "tweets_delete"
    assert endpoint_name("GET", "/2/users/42/followers") == "GET /2/users/:id/followers"
    assert LIKE == "POST /2/users/:id/likes"


async def test_cancelling_a_post_in_flight_waits_for_x_and_returns_its_answer(env: Env) -> None:
    """A write that has started is seen through: cancelling the caller (a shutdown, a lost
    lease) waits for X's answer, which the caller then gets to record."""
    state = env.state
    client = env.client(timeout=5.0)
    state.inject_latency(CREATE_TWEET, 0.8)
    task = asyncio.create_task(client.post_tweet("half way there"))
    await wait_for(lambda: state.in_flight(CREATE_TWEET) == 1, message="the post in flight")
    task.cancel()
    tweet = await asyncio.wait_for(task, 5)
    assert not task.cancelled()
    (stored,) = state.posted_tweets()
    assert tweet.id == stored.id
    assert state.in_flight(CREATE_TWEET) == 0


async def test_a_cancelled_read_stops_at_once(env: Env) -> None:
    state = env.state
    client = env.client(timeout=5.0)
    state.inject_latency(USER_TWEETS, 3.0)
    task = asyncio.create_task(client.timeline_page(state.me.id))
    await wait_for(lambda: state.in_flight(USER_TWEETS) == 1, message="the read in flight")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)


async def test_once_stopping_a_write_that_could_not_end_in_time_is_not_sent(env: Env) -> None:
    state = env.state
    client = env.client(timeout=2.0, connect_timeout=0.5)
    assert client.call_timeout_s == 2.5
    client.refuse_writes_after(time.monotonic() + 2.0)  # less than a whole call is left
    with pytest.raises(XNotSent):
        await client.post_tweet("too late to start")
    with pytest.raises(XNotSent):
        await client.upload_media(png(), "image/png")
    assert state.request_count() == 0
    await client.timeline_page(state.me.id)  # reads still go out
    client.refuse_writes_after(time.monotonic() + 10.0)  # enough left for a whole call
    await client.post_tweet("still in time")
    client.refuse_writes_after(None)
    assert [t.source_text for t in state.posted_tweets()] == ["still in time"]
