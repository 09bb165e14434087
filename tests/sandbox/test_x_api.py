"""The X API v2 stand-in, exercised through tweepy and requests-oauthlib on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import pytest
import requests
import tweepy
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from requests_oauthlib import OAuth1

from sandbox.x_api import (
    CREATE_TWEET,
    LOOKUP,
    MENTIONS,
    XState,
    create_app,
)
from sandbox.x_api.text import tweet_length
from worker.clients.x import PUBLIC_BASE_URL, x_session
from worker.content.tweet_text import weighted_length

T = TypeVar("T")


def png(width: int = 16, height: int = 16, size: int = 64) -> bytes:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    header += struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return header + b"\x00" * max(0, size - len(header))


class Server:
    def __init__(self, state: XState, url: str) -> None:
        self.state = state
        self.url = url

    def session(self, *, consumer_secret: str | None = None) -> tuple[requests.Session, OAuth1]:
        """A requests session reaching the stand-in for https://api.twitter.com URLs (sent, and
        so signed, to the stand-in's own URL)."""
        session: requests.Session = x_session(self.url, timeout=5.0)
        auth = OAuth1(
            self.state.consumer_key,
            consumer_secret or self.state.consumer_secret,
            self.state.access_token,
            self.state.access_token_secret,
        )
        return session, auth

    def tweepy(self, **overrides: Any) -> tweepy.Client:
        kwargs: dict[str, Any] = {
            "bearer_token": self.state.bearer_token,
            "consumer_key": self.state.consumer_key,
            "consumer_secret": self.state.consumer_secret,
            "access_token": self.state.access_token,
            "access_token_secret": self.state.access_token_secret,
            "return_type": dict,
            **overrides,
        }
        client = tweepy.Client(**kwargs)
        client.session = x_session(self.url, timeout=5.0)
        return client


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Blocking HTTP clients run in a thread so the server (same loop) can answer."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = XState()
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Server(state, f"http://127.0.0.1:{port}")
    state.release_hangs()
    await runner.cleanup()


API = PUBLIC_BASE_URL


# --- OAuth 1.0a ------------------------------------------------------------------------------------


async def test_signed_request_accepted_wrong_secret_rejected(server: Server) -> None:
    me = await call(server.tweepy().get_me, user_auth=True)
    assert me["data"]["username"] == "chirpbase_bot"
    with pytest.raises(tweepy.Unauthorized) as info:
        await call(server.tweepy(consumer_secret="not-the-secret").get_me, user_auth=True)
    body = info.value.response.json()
    assert body == {
        "title": "Unauthorized",
        "detail": "Unauthorized",
        "type": "about:blank",
        "status": 401,
    }
    with pytest.raises(tweepy.Unauthorized):
        await call(server.tweepy(access_token_secret="wrong").create_tweet, text="hi")
    assert server.state.posted_tweets() == []


async def test_tampered_query_parameter_rejected(server: Server) -> None:
    session, auth = server.session()
    tweet = server.state.create_tweet(server.state.me.id, "hello")
    prepared = requests.Request("GET", f"{API}/2/tweets", params={"ids": tweet.id}, auth=auth)
    signed = session.prepare_request(prepared)
    signed.url = (signed.url or "").replace(tweet.id, str(int(tweet.id) + 1))
    response = await call(session.send, signed)
    assert response.status_code == 401


async def test_replayed_nonce_rejected(server: Server) -> None:
    session, auth = server.session()
    signed = session.prepare_request(requests.Request("GET", f"{API}/2/users/me", auth=auth))
    first = await call(session.send, signed)
    again = await call(session.send, signed)
    assert (first.status_code, again.status_code) == (200, 401)


async def test_stale_timestamp_rejected(server: Server) -> None:
    session, _ = server.session()
    state = server.state
    stale = OAuth1(
        state.consumer_key,
        state.consumer_secret,
        state.access_token,
        state.access_token_secret,
        timestamp=str(int(time.time()) - 3600),
    )
    response = await call(session.get, f"{API}/2/users/me", auth=stale)
    assert response.status_code == 401


async def test_form_body_is_signed_json_body_is_not(server: Server) -> None:
    session, auth = server.session()
    # a signed form body passes authentication (the handler then wants JSON: 400, not 401)
    ok = await call(session.post, f"{API}/2/tweets", data={"text": "form body"}, auth=auth)
    assert ok.status_code == 400
    # a form body changed after signing does not
    prepared = session.prepare_request(
        requests.Request("POST", f"{API}/2/tweets", data={"text": "original"}, auth=auth)
    )
    prepared.body = "text=changed"
    prepared.headers["Content-Length"] = str(len(prepared.body))
    tampered = await call(session.send, prepared)
    assert tampered.status_code == 401
    # JSON bodies are outside the signature
    created = await call(session.post, f"{API}/2/tweets", json={"text": "json"}, auth=auth)
    assert created.status_code == 201


async def test_signature_must_cover_the_url_requested(server: Server) -> None:
    """The stand-in checks the signature against the URL the request was sent to (RFC 5849
    section 3.4.1.2): signed for the loopback URL and sent there, accepted; signed for
    https://api.twitter.com and then sent elsewhere (what an adapter that rewrites after
    signing does), refused with 401 as X refuses it."""
    session = requests.Session()
    state = server.state
    auth = OAuth1(
        state.consumer_key, state.consumer_secret, state.access_token, state.access_token_secret
    )
    response = await call(session.get, f"{server.url}/2/users/me", auth=auth)
    assert response.status_code == 200
    signed_elsewhere = session.prepare_request(
        requests.Request("GET", f"{API}/2/users/me", auth=auth)
    )
    signed_elsewhere.url = f"{server.url}/2/users/me"
    response = await call(session.send, signed_elsewhere)
    assert response.status_code == 401


async def test_bearer_token_where_x_allows_it(server: Server) -> None:
    state = server.state
    tweet = state.create_tweet(state.me.id, "public tweet")
    client = server.tweepy()
    found = await call(client.get_tweets, [tweet.id], user_auth=False)
    assert found["data"][0]["id"] == tweet.id
    with pytest.raises(tweepy.Forbidden) as info:
        await call(client.create_tweet, text="app-only", user_auth=False)
    assert info.value.response.json()["type"].endswith("/unsupported-authentication")
    with pytest.raises(tweepy.Unauthorized):
        await call(server.tweepy(bearer_token="nope").get_tweets, [tweet.id])
    session, auth = server.session()
    usage = await call(session.get, f"{API}/2/usage/tweets", auth=auth)
    assert usage.status_code == 403  # usage is app-only
    usage = await call(
        session.get,
        f"{API}/2/usage/tweets",
        headers={"Authorization": f"Bearer {state.bearer_token}"},
    )
    assert usage.status_code == 200


# --- tweets -------------------------------------------------------------------------------------


async def test_create_tweet_shape_reply_and_duplicate(server: Server) -> None:
    client = server.tweepy()
    created = await call(client.create_tweet, text="first tweet")
    tweet_id = created["data"]["id"]
    assert created["data"] == {
        "id": tweet_id,
        "text": "first tweet",
        "edit_history_tweet_ids": [tweet_id],
    }
    reply = await call(client.create_tweet, text="a reply", in_reply_to_tweet_id=tweet_id)
    stored = server.state.get_tweet(reply["data"]["id"])
    assert stored is not None and stored.conversation_id == tweet_id
    with pytest.raises(tweepy.Forbidden) as info:
        await call(client.create_tweet, text="first tweet")
    assert info.value.response.json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    with pytest.raises(tweepy.Forbidden):
        await call(client.create_tweet, text="reply to nothing", in_reply_to_tweet_id="42")
    assert [t.text for t in server.state.posted_tweets()] == ["first tweet", "a reply"]


async def test_weighted_length_limit(server: Server) -> None:
    client = server.tweepy()
    await call(client.create_tweet, text="日" * 140)
    with pytest.raises(tweepy.BadRequest) as info:
        await call(client.create_tweet, text="日" * 141)
    body = info.value.response.json()
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert "too long" in body["errors"][0]["message"]
    # 250 characters of URL count 23
    await call(client.create_tweet, text="see https://example.com/" + "x" * 250)
    # a bare country domain is a link too (23), and an emoji newer than twitter-text's data 2
    phoenix = "\U0001f426\u200d\U0001f525"
    await call(client.create_tweet, text=phoenix * 128 + " foo.jp")  # 256 + 1 + 23
    with pytest.raises(tweepy.BadRequest):
        await call(client.create_tweet, text=phoenix * 128 + "a foo.jp")
    assert len(server.state.posted_tweets()) == 3


@pytest.mark.parametrize("blank", [" ", "\n\t", "\u00a0\u3000"])
async def test_whitespace_alone_is_refused(server: Server, blank: str) -> None:
    """X refuses a post of whitespace alone (Automattic/jetpack#17521), not as too long."""
    with pytest.raises(tweepy.BadRequest) as info:
        await call(server.tweepy().create_tweet, text=blank)
    assert "You must specify either a text or media." in info.value.response.text
    assert server.state.posted_tweets() == []


async def test_media_ids_must_exist_belong_and_be_fresh(server: Server) -> None:
    state = server.state
    client = server.tweepy()
    with pytest.raises(tweepy.BadRequest):
        await call(client.create_tweet, text="ghost media", media_ids=["123"])
    other = state.add_user("someone")
    foreign = state.add_media(
        other.id, size=10, mime_type="image/png", media_category="tweet_image"
    )
    with pytest.raises(tweepy.BadRequest):
        await call(client.create_tweet, text="foreign media", media_ids=[foreign.id])
    mine = state.add_media(
        state.me.id, size=10, mime_type="image/png", media_category="tweet_image"
    )
    state.advance_time(state.media_expires_after_secs + 1)
    with pytest.raises(tweepy.BadRequest) as info:
        await call(client.create_tweet, text="expired media", media_ids=[mine.id])
    assert "media IDs are invalid" in info.value.response.text
    assert state.posted_tweets() == []


async def test_delete_tweet(server: Server) -> None:
    client = server.tweepy()
    created = await call(client.create_tweet, text="to delete")
    deleted = await call(client.delete_tweet, created["data"]["id"])
    assert deleted == {"data": {"deleted": True}}
    with pytest.raises(tweepy.NotFound):
        await call(client.delete_tweet, created["data"]["id"])


async def test_like_is_idempotent_and_recorded(server: Server) -> None:
    state = server.state
    state.access_tier = "enterprise"  # likes are Enterprise-only since 2026-04-20
    alice = state.add_user("alice")
    tweet = state.add_mention(alice.username, "hello bot")
    client = server.tweepy()
    assert await call(client.like, tweet.id) == {"data": {"liked": True}}
    assert await call(client.like, tweet.id) == {"data": {"liked": True}}
    assert [like.newly_liked for like in state.like_requests(tweet.id)] == [True, False]
    assert tweet.metrics["like_count"] == 1
    session, auth = server.session()
    other_user = await call(
        session.post, f"{API}/2/users/{alice.id}/likes", json={"tweet_id": tweet.id}, auth=auth
    )
    assert other_user.status_code == 403


# --- timelines --------------------------------------------------------------------------------


async def test_mentions_pagination_and_meta(server: Server) -> None:
    state = server.state
    bob = state.add_user("bob")
    ours = state.create_tweet(state.me.id, "our tweet")
    mentions = [
        state.add_mention("bob", f"mention {i}", in_reply_to=ours.id if i % 2 else None)
        for i in range(12)
    ]
    state.create_tweet(state.add_user("carol2").id, "not about us")
    client = server.tweepy()
    fields = [
        "author_id",
        "created_at",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
    ]
    first = await call(
        client.get_users_mentions,
        state.me.id,
        max_results=5,
        tweet_fields=fields,
        expansions=["author_id"],
        user_auth=True,
    )
    assert [t["id"] for t in first["data"]] == [t.id for t in reversed(mentions)][:5]
    assert first["meta"]["result_count"] == 5
    assert first["meta"]["newest_id"] == mentions[-1].id
    assert first["meta"]["oldest_id"] == mentions[-5].id
    assert first["includes"]["users"] == [{"id": bob.id, "name": "bob", "username": "bob"}]
    reply = first["data"][0]
    assert reply["conversation_id"] == ours.id
    assert reply["in_reply_to_user_id"] == state.me.id
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": ours.id}]
    assert reply["created_at"].endswith("Z")
    seen = [t["id"] for t in first["data"]]
    token = first["meta"]["next_token"]
    while token:
        page = await call(
            client.get_users_mentions, state.me.id, max_results=5, pagination_token=token
        )
        seen += [t["id"] for t in page["data"]]
        token = page["meta"].get("next_token")
    assert seen == [t.id for t in reversed(mentions)]
    newer = await call(
        client.get_users_mentions, state.me.id, since_id=mentions[-1].id, user_auth=True
    )
    assert newer == {"meta": {"result_count": 0}}
    with pytest.raises(tweepy.BadRequest) as info:
        await call(client.get_users_mentions, state.me.id, max_results=3)
    assert "is not between 5 and 100" in info.value.response.text


async def walk(
    fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> list[dict[str, Any]]:
    """Every page of a timeline call, following next_token until X gives none."""
    pages = []
    token = None
    for _ in range(200):
        page = await call(fn, *args, pagination_token=token, **kwargs)
        pages.append(page)
        token = page["meta"].get("next_token")
        if token is None:
            return pages
    raise AssertionError("the timeline never ended")


async def test_user_tweets_since_id(server: Server) -> None:
    state = server.state
    first = state.create_tweet(state.me.id, "one")
    second = state.create_tweet(state.me.id, "two")
    state.advance_time(state.timeline_lag_s)
    client = server.tweepy()
    pages = await walk(
        client.get_users_tweets, state.me.id, since_id=first.id, max_results=5, user_auth=True
    )
    assert [t["id"] for page in pages for t in page.get("data", [])] == [second.id]


async def test_a_new_post_reaches_its_timeline_only_after_the_lag(server: Server) -> None:
    state = server.state
    state.timeline_lag_s = 30.0
    client = server.tweepy()
    created = await call(client.create_tweet, text="where did it go?")
    tweet_id = created["data"]["id"]
    pages = await walk(client.get_users_tweets, state.me.id, user_auth=True)
    assert [t for page in pages for t in page.get("data", [])] == []
    # A lookup by id sees it at once; the timeline does not, until the lag has passed.
    looked_up = await call(client.get_tweets, [tweet_id], user_auth=True)
    assert [t["id"] for t in looked_up["data"]] == [tweet_id]
    state.advance_time(29.0)
    pages = await walk(client.get_users_tweets, state.me.id, user_auth=True)
    assert [t for page in pages for t in page.get("data", [])] == []
    state.advance_time(1.0)
    pages = await walk(client.get_users_tweets, state.me.id, user_auth=True)
    assert [t["id"] for page in pages for t in page.get("data", [])] == [tweet_id]


async def test_pages_come_short_or_empty_with_a_next_token(server: Server) -> None:
    state = server.state
    state.short_page_rate = 0.6
    posts = [state.create_tweet(state.me.id, f"post {i}") for i in range(100)]
    state.advance_time(state.timeline_lag_s)
    client = server.tweepy()
    pages = await walk(client.get_users_tweets, state.me.id, max_results=10, user_auth=True)
    sizes = [page["meta"]["result_count"] for page in pages]
    seen = [t["id"] for page in pages for t in page.get("data", [])]
    assert seen == [t.id for t in reversed(posts)]  # nothing lost, nothing twice, in order
    assert any(0 < n < 10 for n in sizes[:-1]) and 0 in sizes  # short and empty mid-walk
    for page, size in zip(pages, sizes, strict=True):
        assert len(page.get("data", [])) == size
        assert ("newest_id" in page["meta"]) == (size > 0)


async def test_start_and_end_time_bound_a_timeline(server: Server) -> None:
    state = server.state
    state.short_page_rate = 0.0
    early = state.create_tweet(state.me.id, "early")
    state.advance_time(120)
    middle = state.create_tweet(state.me.id, "middle")
    state.advance_time(120)
    late = state.create_tweet(state.me.id, "late")
    state.advance_time(state.timeline_lag_s)
    client = server.tweepy()
    start = middle.created_at.replace(microsecond=0)
    body = await call(client.get_users_tweets, state.me.id, start_time=start, user_auth=True)
    assert [t["id"] for t in body["data"]] == [late.id, middle.id]
    body = await call(
        client.get_users_tweets, state.me.id, start_time=start, end_time=start, user_auth=True
    )
    assert [t["id"] for t in body["data"]] == [middle.id]
    assert early.id not in {t["id"] for t in body["data"]}
    with pytest.raises(tweepy.BadRequest) as info:
        await call(client.get_users_tweets, state.me.id, start_time="yesterday", user_auth=True)
    assert "start_time" in info.value.response.text


async def test_links_media_and_html_characters_come_back_rewritten(server: Server) -> None:
    state = server.state
    session, auth = server.session()
    upload = await call(
        session.post,
        f"{API}/2/media/upload",
        files={"media": ("image.png", png(), "image/png")},
        data={"media_category": "tweet_image"},
        auth=auth,
    )
    media = upload.json()["data"]
    sent = "Q&A <live>: see chirpbase.dev and https://example.com/docs?a=1, then x.com."
    client = server.tweepy()
    created = await call(client.create_tweet, text=sent, media_ids=[media["id"]])
    returned = created["data"]["text"]
    parts = returned.split("https://t.co/")
    assert parts[0] == "Q&amp;A &lt;live&gt;: see "
    assert len(parts) == 5  # three links in the text, one appended for the media
    state.advance_time(state.timeline_lag_s)
    body = await call(
        client.get_users_tweets,
        state.me.id,
        tweet_fields=["entities", "attachments"],
        user_auth=True,
    )
    (tweet,) = body["data"]
    assert tweet["text"] == returned
    assert tweet["attachments"] == {"media_keys": [media["media_key"]]}
    urls = tweet["entities"]["urls"]
    assert [u["expanded_url"] for u in urls] == [
        "http://chirpbase.dev",
        "https://example.com/docs?a=1",
        "http://x.com",
        f"https://x.com/chirpbase_bot/status/{tweet['id']}/photo/1",
    ]
    assert [u.get("media_key") for u in urls] == [None, None, None, media["media_key"]]
    assert urls[-1]["display_url"].startswith("pic.x.com/")
    for u in urls:
        assert tweet["text"][u["start"] : u["end"]] == u["url"]
    assert tweet["text"].endswith(" " + urls[-1]["url"])
    # X's duplicate check is on the text as sent, not as stored.
    with pytest.raises(tweepy.Forbidden):
        await call(client.create_tweet, text=sent)
    assert server.state.posted_tweets()[0].source_text == sent


# --- lookup ---------------------------------------------------------------------------------------


async def test_lookup_errors_and_101_ids(server: Server) -> None:
    state = server.state
    tweet = state.create_tweet(state.me.id, "exists")
    client = server.tweepy()
    body = await call(client.get_tweets, [tweet.id, "1234"], tweet_fields=["public_metrics"])
    assert body["data"][0]["public_metrics"]["like_count"] == 0
    assert body["errors"][0]["type"] == "https://api.twitter.com/2/problems/resource-not-found"
    assert body["errors"][0]["resource_id"] == "1234"
    with pytest.raises(tweepy.BadRequest) as info:
        await call(client.get_tweets, [str(i) for i in range(1, 102)])
    assert "[101]" in info.value.response.text


async def test_private_metrics_only_with_user_context_on_own_recent_tweets(server: Server) -> None:
    state = server.state
    state.add_user("dave")
    mine = state.create_tweet(state.me.id, "mine")
    theirs = state.add_mention("dave", "theirs")
    state.advance_metrics(mine.id, impression_count=50, url_link_clicks=3)
    client = server.tweepy()
    fields = ["public_metrics", "non_public_metrics", "organic_metrics"]
    body = await call(client.get_tweets, [mine.id, theirs.id], tweet_fields=fields, user_auth=True)
    assert [t["id"] for t in body["data"]] == [mine.id]
    assert body["data"][0]["non_public_metrics"]["url_link_clicks"] == 3
    assert body["data"][0]["organic_metrics"]["impression_count"] == 50
    refused = {(e["resource_id"], e["field"]) for e in body["errors"]}
    assert refused == {(theirs.id, "non_public_metrics"), (theirs.id, "organic_metrics")}
    assert body["errors"][0]["type"].endswith("/not-authorized-for-field")
    app_only = await call(client.get_tweets, [mine.id], tweet_fields=fields, user_auth=False)
    assert "data" not in app_only and app_only["errors"]
    state.advance_time(31 * 86400)
    old = await call(client.get_tweets, [mine.id], tweet_fields=fields, user_auth=True)
    assert "data" not in old


# --- media ----------------------------------------------------------------------------------------


async def test_media_upload_and_alt_text(server: Server) -> None:
    session, auth = server.session()
    image = png(32, 8)
    upload = await call(
        session.post,
        f"{API}/2/media/upload",
        files={"media": ("image.png", image, "image/png")},
        data={"media_category": "tweet_image"},
        auth=auth,
    )
    assert upload.status_code == 200, upload.text
    data = upload.json()["data"]
    assert data["media_key"] == f"3_{data['id']}"
    assert data["size"] == len(image)
    assert data["expires_after_secs"] == 86400
    alt = await call(
        session.post,
        f"{API}/2/media/metadata",
        json={"id": data["id"], "metadata": {"alt_text": {"text": "a wide thin image"}}},
        auth=auth,
    )
    assert alt.json() == {
        "data": {
            "id": data["id"],
            "associated_metadata": {"alt_text": {"text": "a wide thin image"}},
        }
    }
    assert server.state.media[data["id"]].alt_text == "a wide thin image"
    too_long = await call(
        session.post,
        f"{API}/2/media/metadata",
        json={"id": data["id"], "metadata": {"alt_text": {"text": "x" * 1001}}},
        auth=auth,
    )
    assert too_long.status_code == 400
    unknown = await call(
        session.post,
        f"{API}/2/media/metadata",
        json={"id": "999", "metadata": {"alt_text": {"text": "?"}}},
        auth=auth,
    )
    assert unknown.status_code == 400
    created = await call(
        session.post,
        f"{API}/2/tweets",
        json={"text": "with media", "media": {"media_ids": [data["id"]]}},
        auth=auth,
    )
    assert created.status_code == 201
    assert server.state.posted_tweets()[0].media_keys == [data["media_key"]]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not an image at all", "unrecognized"),
        (b"%PDF-1.7 ...", "unrecognized"),
        (png(size=5 * 1024 * 1024 + 1), "exceeds"),
    ],
)
async def test_media_upload_refuses_non_images_and_big_files(
    server: Server, payload: bytes, fragment: str
) -> None:
    session, auth = server.session()
    response = await call(
        session.post,
        f"{API}/2/media/upload",
        files={"media": ("file", payload, "application/octet-stream")},
        data={"media_category": "tweet_image"},
        auth=auth,
    )
    assert response.status_code == 400
    assert fragment in response.text


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xd8\xff\xe0" + b"\x00" * 20,
        b"GIF89a\x10\x00\x10\x00" + b"\x00" * 10,
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    ],
)
async def test_media_upload_accepts_jpeg_gif_webp(server: Server, payload: bytes) -> None:
    session, auth = server.session()
    response = await call(
        session.post,
        f"{API}/2/media/upload",
        files={"media": ("file", payload, "application/octet-stream")},
        data={"media_category": "tweet_image"},
        auth=auth,
    )
    assert response.status_code == 200, response.text


async def test_media_upload_json_base64(server: Server) -> None:
    session, auth = server.session()
    response = await call(
        session.post,
        f"{API}/2/media/upload",
        json={"media": base64.b64encode(png()).decode(), "media_category": "tweet_image"},
        auth=auth,
    )
    assert response.status_code == 200


# --- limits ---------------------------------------------------------------------------------------


async def test_rate_limit_headers_and_429(server: Server) -> None:
    state = server.state
    state.set_rate_limit(LOOKUP, limit=2, window_secs=60)
    tweet = state.create_tweet(state.me.id, "x")
    session, auth = server.session()
    url = f"{API}/2/tweets?ids={tweet.id}"
    first = await call(session.get, url, auth=auth)
    second = await call(session.get, url, auth=auth)
    third = await call(session.get, url, auth=auth)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert first.headers["x-rate-limit-limit"] == "2"
    assert [r.headers["x-rate-limit-remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    reset = int(third.headers["x-rate-limit-reset"])
    assert 0 < reset - time.time() <= 61
    assert third.json()["title"] == "Too Many Requests"
    state.advance_time(61)
    assert (await call(session.get, url, auth=auth)).status_code == 200


async def test_forced_exhaustion_and_429_without_headers(server: Server) -> None:
    state = server.state
    state.exhaust_rate_limit(CREATE_TWEET, reset_in=120)
    session, auth = server.session()
    limited = await call(session.post, f"{API}/2/tweets", json={"text": "x"}, auth=auth)
    assert limited.status_code == 429
    assert int(limited.headers["x-rate-limit-reset"]) >= int(time.time()) + 118
    state.rate_limit_without_reset_next(MENTIONS)
    bare = await call(session.get, f"{API}/2/users/{state.me.id}/mentions", auth=auth)
    assert bare.status_code == 429
    assert "x-rate-limit-reset" not in bare.headers


async def test_usage_cap_is_a_distinct_429(server: Server) -> None:
    state = server.state
    state.set_usage_cap(posts=1)
    session, auth = server.session()
    assert (await call(session.post, f"{API}/2/tweets", json={"text": "1"}, auth=auth)).ok
    capped = await call(session.post, f"{API}/2/tweets", json={"text": "2"}, auth=auth)
    assert capped.status_code == 429
    assert capped.json()["type"] == "https://api.twitter.com/2/problems/usage-capped"
    assert capped.json()["title"] == "UsageCapExceeded"
    assert int(capped.headers["x-rate-limit-remaining"]) > 0  # calls left, still capped
    state.set_usage_cap(reads=0)
    reads = await call(session.get, f"{API}/2/users/{state.me.id}/mentions", auth=auth)
    assert reads.status_code == 429 and "usage-capped" in reads.text


async def test_usage_endpoint(server: Server) -> None:
    state = server.state
    state.create_tweet(state.me.id, "read me")
    state.advance_time(state.timeline_lag_s)
    state.short_page_rate = 0.0
    client = server.tweepy()
    await call(client.get_users_tweets, state.me.id, user_auth=True)
    session, _ = server.session()
    response = await call(
        session.get,
        f"{API}/2/usage/tweets",
        params={"days": "3", "usage.fields": "daily_project_usage,project_usage"},
        headers={"Authorization": f"Bearer {state.bearer_token}"},
    )
    data = response.json()["data"]
    assert data["project_usage"] == "1"
    assert data["project_id"] == state.project_id
    assert len(data["daily_project_usage"]["usage"]) == 3
    assert data["daily_project_usage"]["usage"][-1]["usage"] == "1"


# --- faults ---------------------------------------------------------------------------------------


async def test_injected_5xx_and_latency(server: Server) -> None:
    state = server.state
    state.fail_next(CREATE_TWEET, 2, status=500)
    client = server.tweepy()
    for _ in range(2):
        with pytest.raises(tweepy.TwitterServerError):
            await call(client.create_tweet, text="boom")
    await call(client.create_tweet, text="boom")
    assert [r.status for r in state.requests if r.endpoint == CREATE_TWEET] == [500, 500, 201]
    state.inject_latency(CREATE_TWEET, 0.2)
    started = time.monotonic()
    await call(client.create_tweet, text="slow")
    assert time.monotonic() - started >= 0.2


async def test_drop_after_create_leaves_the_tweet(server: Server) -> None:
    state = server.state
    state.drop_after_create_next()
    client = server.tweepy()
    with pytest.raises(requests.exceptions.ConnectionError):
        await call(client.create_tweet, text="did it post?")
    assert [t.text for t in state.posted_tweets()] == ["did it post?"]
    assert state.request_count(CREATE_TWEET) == 1


async def test_hang_is_released(server: Server) -> None:
    state = server.state
    state.hang_next(MENTIONS, seconds=30)
    session, auth = server.session()
    task = asyncio.ensure_future(
        call(session.get, f"{API}/2/users/{state.me.id}/mentions", auth=auth)
    )
    done, _ = await asyncio.wait({task}, timeout=0.2)
    assert not done
    state.release_hangs()
    response = await asyncio.wait_for(task, timeout=5)
    assert response.status_code == 200


# --- control plane --------------------------------------------------------------------------------


async def test_control_endpoints(server: Server) -> None:
    async with aiohttp.ClientSession(server.url) as http:
        user = await (await http.post("/_sandbox/users", json={"username": "erin"})).json()
        ours = server.state.create_tweet(server.state.me.id, "ours")
        reply = await (
            await http.post(
                "/_sandbox/mentions", json={"author": "erin", "text": "hey", "in_reply_to": ours.id}
            )
        ).json()
        assert reply["author_id"] == user["id"]
        assert reply["text"] == "@chirpbase_bot hey"
        metrics = await (
            await http.post("/_sandbox/metrics", json={"tweet_id": ours.id, "like_count": 4})
        ).json()
        assert metrics["like_count"] == 4 and metrics["reply_count"] == 1
        await http.post("/_sandbox/faults", json={"endpoint": CREATE_TWEET, "fail_next": 1})
        await http.post("/_sandbox/rate_limits", json={"endpoint": LOOKUP, "remaining": 0})
        await http.post("/_sandbox/usage_cap", json={"reads": 10})
        credentials = await (await http.get("/_sandbox/credentials")).json()
        assert credentials["X_ACCESS_TOKEN"] == server.state.access_token
    client = server.tweepy()
    with pytest.raises(tweepy.TwitterServerError):
        await call(client.create_tweet, text="x")
    with pytest.raises(tweepy.TooManyRequests):
        await call(client.get_tweets, [ours.id])
    assert server.state.monthly_read_cap == 10
    async with aiohttp.ClientSession(server.url) as http:
        tweets = await (await http.get("/_sandbox/tweets")).json()
        counts = await (await http.get("/_sandbox/requests")).json()
        snapshot = await (await http.get("/_sandbox/state")).json()
    assert [t["text"] for t in tweets["tweets"]] == ["ours"]
    assert counts["counts"] == {CREATE_TWEET: 1, LOOKUP: 1}
    assert snapshot["me"]["username"] == "chirpbase_bot"


# --- the stand-in's length check agrees with the worker's ---------------------------------------

FAMILY_EMOJI = "👨\u200d👩\u200d👧"
WORDS = [
    "hello", "Postgres", "日本語", "한국어", "Привет", "naïve", "😀", "👍🏽", FAMILY_EMOJI,
    "🇫🇷", "❤️", "©", "1️⃣", "#tag", "@someone", "…", "—", "e.g.", "v1.2.3", "node.js",
    "example.com", "www.example.com", "docs.python.org/3/library", "t.co/xyz", "foo.jp",
    "foo.co.jp", "https://example.com/path?a=1&b=2", "http://x.com/", "HTTPS://EXAMPLE.ORG",
    "https://en.wikipedia.org/wiki/Primer_(film)", "https://t.co/AbC123", "пример.рф",
    "https://пример.рф/путь", "a@b.com", "(see", "this)", "ok\u0301",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(WORDS), st.sampled_from(["", "", ".", ",", "!", "?", ")", ":"])),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([" ", "  ", "\n", " — "]),
)
def test_stand_in_length_check_agrees_with_worker(
    words: list[tuple[str, str]], separator: str
) -> None:
    text = separator.join(word + punct for word, punct in words)
    assert tweet_length(text) == weighted_length(text)


def test_fixture_word_list_has_a_family() -> None:
    assert tweet_length(FAMILY_EMOJI) == 2
