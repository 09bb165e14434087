"""XClient, through real tweepy and requests, against X's late-2026 rules on the stand-in.

* `X_API_BASE_URL=https://api.x.com` works: the stand-in serves TLS for api.x.com behind a
  CONNECT proxy, and checks the OAuth 1.0a signature against the URL actually requested.
* X's refusals are typed: 403 client-forbidden (a capability the tier lacks), 403 for a reply
  that was not summoned, 402 (credits), 429 on a spent 24-hour window (wait for its reset).
* Problem types match under either host; answers parse in either naming of the spec.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from requests_oauthlib import OAuth1

from sandbox.x_api import CREATE_TWEET, LIKE, LOOKUP, ME, XState, create_app
from tests.tls import ConnectProxy, make_certificates
from worker.clients.x import (
    DOCUMENTED_BASE_URL,
    TWEEPY_BASE_URL,
    XAuthError,
    XCapabilityRefused,
    XClient,
    XCreditsExhausted,
    XRateLimited,
    XReplyNotAllowed,
    XUsageCapped,
)


def client_for(state: XState, base_url: str, **overrides: Any) -> XClient:
    return XClient(
        api_key=state.consumer_key,
        api_secret=state.consumer_secret,
        access_token=state.access_token,
        access_token_secret=state.access_token_secret,
        bearer_token=state.bearer_token,
        base_url=base_url,
        timeout=5.0,
        connect_timeout=2.0,
        read_attempts=1,
        **overrides,
    )


class Served:
    def __init__(self, state: XState, url: str) -> None:
        self.state = state
        self.url = url
        self.clients: list[XClient] = []

    def client(self, **overrides: Any) -> XClient:
        client = client_for(self.state, self.url, **overrides)
        self.clients.append(client)
        return client


async def _serve(state: XState, **site: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, **site).start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    state = XState()
    runner, port = await _serve(state)
    env = Served(state, f"http://127.0.0.1:{port}")
    yield env
    for client in env.clients:
        await client.aclose()
    await runner.cleanup()


# -- the host ---------------------------------------------------------------------------------------


async def test_api_x_com_signs_what_it_sends_and_passes_the_stand_ins_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = XState()
    certs = make_certificates("api.x.com", tmp_path)
    runner, port = await _serve(state, ssl_context=certs.server_context())
    proxy = await ConnectProxy(port).start()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = client_for(state, DOCUMENTED_BASE_URL)
    try:
        me = await client.me()  # tweepy's call, OAuth 1.0a user context
        assert me.id == state.me.id
        tweet = await client.post_tweet("hello from api.x.com")  # our session call
        assert state.get_tweet(tweet.id) is not None
        assert proxy.targets and set(proxy.targets) == {"api.x.com:443"}
        assert state.request_count(ME, status=200) == 1
        assert state.request_count(CREATE_TWEET, status=201) == 1

        # What a client that signs tweepy's host and then sends elsewhere gets: 401.
        session = requests.Session()
        auth = OAuth1(
            state.consumer_key,
            state.consumer_secret,
            state.access_token,
            state.access_token_secret,
        )
        signed = session.prepare_request(
            requests.Request("GET", f"{TWEEPY_BASE_URL}/2/users/me", auth=auth)
        )
        signed.url = f"{DOCUMENTED_BASE_URL}/2/users/me"
        settings = session.merge_environment_settings(signed.url, {}, None, None, None)
        refused = await asyncio.to_thread(session.send, signed, **settings)
        assert refused.status_code == 401
        assert state.request_count(ME, status=401) == 1
    finally:
        await client.aclose()
        await proxy.stop()
        await runner.cleanup()


# -- refusals ---------------------------------------------------------------------------------------


async def test_a_like_off_enterprise_is_a_capability_refusal(served: Served) -> None:
    state = served.state
    alice = state.add_user("alice")
    mention = state.add_mention(alice.id, "hi")
    client = served.client()
    with pytest.raises(XCapabilityRefused) as info:
        await client.like(state.me.id, mention.id)
    assert info.value.status == 403 and info.value.reason == "client-not-enrolled"
    assert isinstance(info.value, XAuthError)  # still an authorization problem to old callers
    assert state.access_tier not in ("enterprise",) and state.like_requests() == []
    state.access_tier = "enterprise"
    assert await client.like(state.me.id, mention.id) is True
    assert state.request_count(LIKE) == 2


async def test_quotes_and_unsummoned_replies_are_refused_the_way_x_refuses_them(
    served: Served,
) -> None:
    state = served.state
    stranger = state.add_user("stranger")
    take = state.add_post(stranger.id, "nobody mentioned")
    client = served.client()
    with pytest.raises(XCapabilityRefused):
        await client.post_tweet("quoting you", quote_tweet_id=take.id)
    with pytest.raises(XReplyNotAllowed, match="not been mentioned or otherwise engaged"):
        await client.post_tweet("replying to you", reply_to=take.id)
    # Summoned: a mention, a quote of one of our posts, or our own post (a thread).
    ours = await client.post_tweet("our post")
    mention = state.add_mention(stranger.id, "@chirpbase_bot thoughts?")
    quote = state.add_post(stranger.id, "look at this", quote_of=ours.id)
    for parent in (mention.id, quote.id, ours.id):
        await client.post_tweet(f"answering {parent}", reply_to=parent)
    assert state.billing.by_operation() == {
        "post": pytest.approx(0.015 * 2),  # ours and the thread reply
        "reply_summoned": pytest.approx(0.010 * 2),
    }
    state.access_tier = "enterprise"
    await client.post_tweet("replying anyway", reply_to=take.id)
    await client.post_tweet("and quoting", quote_tweet_id=take.id)


async def test_402_and_the_spending_limit(served: Served) -> None:
    state = served.state
    client = served.client()
    state.billing.credits_usd = 0.02
    await client.post_tweet("one")  # served while credits remain: the balance goes to 0.005
    await client.post_tweet("two")  # ... and slightly negative, as X allows
    with pytest.raises(XCreditsExhausted) as info:
        await client.post_tweet("three")
    assert info.value.status == 402 and not info.value.outcome_unknown
    with pytest.raises(XCreditsExhausted):
        await client.me()  # every request is blocked, reads too
    state.billing.add_credits(1.0)
    state.billing.spending_limit_usd = state.billing.spent_usd
    with pytest.raises(XCreditsExhausted, match="spending limit"):
        await client.post_tweet("four")
    assert [t.text for t in state.posted_tweets()] == ["one", "two"]


async def test_a_spent_24_hour_window_is_what_the_client_waits_for(served: Served) -> None:
    state = served.state
    client = served.client()
    await client.post_tweet("first")
    seen = client.rate_limit("tweets")
    assert seen is not None and seen.day_scope == "app" and seen.day_limit == 10_000
    assert seen.day_remaining == 9_999 and seen.remaining == 99
    day = state.day_limits.set(CREATE_TWEET, remaining=0, reset_in=5 * 3600)
    with pytest.raises(XRateLimited) as info:
        await client.post_tweet("second")
    assert info.value.daily
    assert info.value.reset_at == datetime.fromtimestamp(int(day.window.reset_at), UTC)
    seen = client.rate_limit("tweets")
    assert seen is not None and seen.remaining and seen.remaining > 0  # the 15-minute window
    now = datetime.now(UTC)
    assert seen.waits_until(now) == seen.day_reset_at
    assert seen.day_reset_at is not None and seen.day_reset_at > now + timedelta(hours=4)
    # Likes have a per-user 24-hour window.
    state.access_tier = "enterprise"
    alice = state.add_user("alice")
    await client.like(state.me.id, state.add_mention(alice.id, "hey").id)
    like = client.rate_limit("likes")
    assert like is not None and (like.day_scope, like.day_limit) == ("user", 1_000)


@pytest.mark.parametrize("host", ["https://api.twitter.com", "https://api.x.com"])
async def test_problem_types_match_under_either_host(served: Served, host: str) -> None:
    state = served.state
    state.problem_base = f"{host}/2/problems"
    state.set_usage_cap(posts=0)
    client = served.client()
    with pytest.raises(XUsageCapped):
        await client.post_tweet("capped")
    alice = state.add_user("alice")
    with pytest.raises(XCapabilityRefused):
        await client.like(state.me.id, state.add_mention(alice.id, "hi").id)


# -- spec drift ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["v2.166", "v2.167"])
async def test_answers_parse_in_either_naming_of_the_spec(served: Served, spec: str) -> None:
    state = served.state
    state.spec = spec  # type: ignore[assignment]
    alice = state.add_user("alice")
    old = state.create_tweet(  # ids grow with time, as X's do
        state.me.id, "an old one", created_at=datetime.now(UTC) - timedelta(days=40)
    )
    # A minute old: on the account's timeline already (posts show there after timeline_lag_s).
    ours = state.create_tweet(
        state.me.id, "ours", created_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    reply = state.add_reply(alice.id, ours.id, "a reply " + "with many words " * 20)
    state.advance_metrics(ours.id, retweet_count=3, like_count=2)
    state.advance_metrics(old.id, retweet_count=7)
    client = served.client()
    page = await client.mentions(state.me.id)
    [got] = page.tweets
    assert got.in_reply_to_tweet_id == ours.id  # referenced_tweets / referenced_posts
    assert got.note_text == reply.note_text and got.note_text  # note_tweet / note_post
    found = await client.lookup_tweets([ours.id, old.id])  # private metrics refused for old
    by_id = {m.id: m for m in found}
    assert (by_id[ours.id].retweets, by_id[ours.id].likes) == (3, 2)  # repost_count
    assert by_id[old.id].retweets == 7  # asked again with public metrics only
    assert state.request_count(LOOKUP) == 2
    timeline = await client.own_timeline(state.me.id, datetime.now(UTC) - timedelta(days=1))
    assert [m.id for m in timeline.metrics] == [ours.id]
    # The walk stops at the first post older than asked (it was served, and billed, too).
    assert timeline.served_ids == [ours.id, old.id] and timeline.complete
    assert timeline.metrics[0].retweets == 3


async def test_users_are_looked_up_100_a_request_and_billed_once_a_day(served: Served) -> None:
    state = served.state
    people = [state.add_user(f"person_{i}") for i in range(120)]
    client = served.client()
    found = await client.users([p.id for p in people] + ["1234567890"])  # one unknown id
    assert sorted(u.username for u in found) == sorted(p.username for p in people)
    assert state.request_count("GET /2/users") == 2
    assert state.billing.by_operation() == {"user_read": pytest.approx(1.20)}
    await client.users([people[0].id])  # the same user again today: not billed again
    assert state.billing.by_operation() == {"user_read": pytest.approx(1.20)}
