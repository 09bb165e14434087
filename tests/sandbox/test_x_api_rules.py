"""The X stand-in's late-2026 rules, seen as a client sees them (tweepy and raw requests):
the published rate-limit table with 24-hour windows, the tier's refusals in X's shape, billing
per resource once a UTC day, 402, and either naming of the spec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import requests
import tweepy
from aiohttp import web
from requests_oauthlib import OAuth1

from sandbox.x_api import CREATE_TWEET, LIKE, LOOKUP, MENTIONS, USAGE, XState, create_app
from worker.clients.x import PUBLIC_BASE_URL, x_session

T = TypeVar("T")
API = PUBLIC_BASE_URL


class Server:
    def __init__(self, state: XState, url: str) -> None:
        self.state = state
        self.url = url

    def tweepy(self) -> tweepy.Client:
        client = tweepy.Client(
            bearer_token=self.state.bearer_token,
            consumer_key=self.state.consumer_key,
            consumer_secret=self.state.consumer_secret,
            access_token=self.state.access_token,
            access_token_secret=self.state.access_token_secret,
            return_type=dict,
        )
        client.session = x_session(self.url, timeout=5.0)
        return client

    def session(self) -> tuple[requests.Session, OAuth1]:
        auth = OAuth1(
            self.state.consumer_key,
            self.state.consumer_secret,
            self.state.access_token,
            self.state.access_token_secret,
        )
        return x_session(self.url, timeout=5.0), auth


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = XState()
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield Server(state, f"http://127.0.0.1:{runner.addresses[0][1]}")
    await runner.cleanup()


async def test_the_published_limits_and_their_24_hour_windows(server: Server) -> None:
    session, auth = server.session()
    posted = await call(session.post, f"{API}/2/tweets", json={"text": "hi"}, auth=auth)
    assert posted.status_code == 201
    h = posted.headers
    assert (h["x-rate-limit-limit"], h["x-rate-limit-remaining"]) == ("100", "99")
    assert (h["x-app-limit-24hour-limit"], h["x-app-limit-24hour-remaining"]) == ("10000", "9999")
    assert int(h["x-app-limit-24hour-reset"]) > int(h["x-rate-limit-reset"])
    assert "x-user-limit-24hour-limit" not in h
    mentions = await call(session.get, f"{API}/2/users/{server.state.me.id}/mentions", auth=auth)
    assert mentions.headers["x-rate-limit-limit"] == "300"  # per user, 15 minutes
    assert "x-app-limit-24hour-limit" not in mentions.headers
    lookup = await call(session.get, f"{API}/2/tweets", params={"ids": "1"}, auth=auth)
    assert lookup.headers["x-rate-limit-limit"] == "5000"
    # A spent 24-hour window refuses while the 15-minute one has calls left.
    server.state.day_limits.set(CREATE_TWEET, remaining=0, reset_in=7200)
    refused = await call(session.post, f"{API}/2/tweets", json={"text": "again"}, auth=auth)
    assert refused.status_code == 429
    assert refused.headers["x-app-limit-24hour-remaining"] == "0"
    assert int(refused.headers["x-rate-limit-remaining"]) > 0
    assert server.state.posts_created == 1


async def test_likes_carry_a_per_user_24_hour_window_on_enterprise(server: Server) -> None:
    state = server.state
    state.access_tier = "enterprise"
    alice = state.add_user("alice")
    mention = state.add_mention(alice.id, "hey")
    session, auth = server.session()
    liked = await call(
        session.post,
        f"{API}/2/users/{state.me.id}/likes",
        json={"tweet_id": mention.id},
        auth=auth,
    )
    assert liked.status_code == 200
    assert liked.headers["x-user-limit-24hour-limit"] == "1000"
    assert liked.headers["x-rate-limit-limit"] == "50"


async def test_tier_refusals_in_x_shape(server: Server) -> None:
    state = server.state
    alice = state.add_user("alice")
    mention = state.add_mention(alice.id, "hey")
    take = state.add_post(alice.id, "nothing about you")
    client = server.tweepy()
    with pytest.raises(tweepy.Forbidden) as info:
        await call(client.like, mention.id)
    body = info.value.response.json()
    assert body["type"] == "https://api.twitter.com/2/problems/client-forbidden"
    assert (body["title"], body["reason"]) == ("Client Forbidden", "client-not-enrolled")
    assert state.consumer_key not in info.value.response.text
    with pytest.raises(tweepy.Forbidden) as info:
        await call(client.create_tweet, text="quote", quote_tweet_id=take.id)
    assert info.value.response.json()["reason"] == "client-not-enrolled"
    with pytest.raises(tweepy.Forbidden) as info:
        await call(client.create_tweet, text="unsolicited", in_reply_to_tweet_id=take.id)
    assert info.value.response.json() == {
        "title": "Forbidden",
        "status": 403,
        "detail": "Reply to this conversation is not allowed because you have not been "
        "mentioned or otherwise engaged by the author of the post you are replying to.",
        "type": "about:blank",
    }
    assert state.posted_tweets() == [] and state.like_requests() == []
    # The control plane switches the tier; then all three go through.
    session, _ = server.session()
    switched = await call(
        session.post, f"{server.url}/_sandbox/access", json={"tier": "enterprise"}
    )
    assert switched.json() == {"tier": "enterprise"}
    await call(client.like, mention.id)
    await call(client.create_tweet, text="quote", quote_tweet_id=take.id)
    await call(client.create_tweet, text="solicited enough", in_reply_to_tweet_id=take.id)
    assert len(state.posted_tweets()) == 2


async def test_reads_are_billed_per_resource_once_a_utc_day(server: Server) -> None:
    state = server.state
    alice = state.add_user("alice")
    mentions = [state.add_mention(alice.id, f"m{i}") for i in range(4)]
    client = server.tweepy()
    await call(client.get_users_mentions, state.me.id, user_auth=True)  # owned: $0.001 each
    await call(client.get_users_mentions, state.me.id, user_auth=True)  # same posts: free
    ids = [m.id for m in mentions]
    await call(client.get_tweets, ids, user_auth=True)  # already billed today: free
    await call(
        client.get_users_mentions,
        state.me.id,
        expansions=["author_id"],
        user_auth=True,
    )  # the expanded author is a User: Read
    other = state.add_user("bob")
    # Made a minute ago: on bob's timeline already (a post shows there after timeline_lag_s).
    theirs = state.create_tweet(
        other.id, "bob's own post", created_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    await call(client.get_users_tweets, other.id, user_auth=True)  # not owned: $0.005
    assert state.billing.by_operation() == {
        "owned_read": pytest.approx(0.004),
        "user_read": pytest.approx(0.010),
        "post_read": pytest.approx(0.005),
    }
    assert [c.units for c in state.billing.charges] == [4, 1, 1]
    assert theirs.id not in ids
    session, _ = server.session()
    snapshot = await call(session.get, f"{server.url}/_sandbox/state")
    assert snapshot.json()["billing"]["spent_usd"] == pytest.approx(0.019)


async def test_402_when_credits_run_out_on_every_endpoint(server: Server) -> None:
    state = server.state
    session, auth = server.session()
    control = await call(session.post, f"{server.url}/_sandbox/credits", json={"credits_usd": 0})
    assert control.json()["credits_usd"] == 0
    for method, path, kwargs in (
        ("post", "/2/tweets", {"json": {"text": "hi"}}),
        ("get", "/2/users/me", {}),
        ("get", f"/2/users/{state.me.id}/mentions", {}),
    ):
        answer = await call(getattr(session, method), f"{API}{path}", auth=auth, **kwargs)
        assert answer.status_code == 402, path
        assert "does not have any credits" in answer.json()["detail"]
    app_only = await call(
        session.get,
        f"{API}/2/usage/tweets",
        headers={"Authorization": f"Bearer {state.bearer_token}"},
    )
    assert app_only.status_code == 402
    assert state.request_count(USAGE, status=402) == 1 and state.posts_created == 0
    await call(session.post, f"{server.url}/_sandbox/credits", json={"add": 1})
    ok = await call(session.post, f"{API}/2/tweets", json={"text": "hi"}, auth=auth)
    assert ok.status_code == 201


@pytest.mark.parametrize("parameter", ["tweet.fields", "post.fields"])
async def test_v2_167_names_and_either_fields_parameter(server: Server, parameter: str) -> None:
    state = server.state
    state.spec = "v2.167"
    alice = state.add_user("alice")
    ours = state.create_tweet(state.me.id, "ours")
    reply = state.add_reply(alice.id, ours.id, "nice")
    state.advance_metrics(ours.id, retweet_count=2)
    session, auth = server.session()
    looked = await call(
        session.get,
        f"{API}/2/tweets",
        params={"ids": ours.id, parameter: "public_metrics"},
        auth=auth,
    )
    [post] = looked.json()["data"]
    assert (
        post["public_metrics"]["repost_count"] == 2
        and "retweet_count" not in post["public_metrics"]
    )
    assert post["edit_history_post_ids"] == [ours.id]
    timeline = await call(
        session.get,
        f"{API}/2/users/{state.me.id}/mentions",
        params={parameter: "referenced_tweets", "expansions": "referenced_tweets.id"},
        auth=auth,
    )
    body = timeline.json()
    assert body["data"][0]["referenced_posts"] == [{"type": "replied_to", "id": ours.id}]
    assert [p["id"] for p in body["includes"]["posts"]] == [ours.id]
    assert body["data"][0]["id"] == reply.id
    old = state.create_tweet(alice.id, "not ours")
    refused = await call(
        session.get,
        f"{API}/2/tweets",
        params={"ids": old.id, parameter: "non_public_metrics"},
        auth=auth,
    )
    [error] = refused.json()["errors"]
    assert error["type"].endswith("/field-unauthorized") and "resource_id" not in error
    assert state.request_count(LOOKUP) == 2 and state.request_count(MENTIONS) == 1
    assert state.request_count(LIKE) == 0
