"""The stand-in's X Activity API and webhooks, through chirpbase's own client (XActivity).

A small webhook consumer runs on a loopback port and the stand-in reaches it through a route
from a public https origin (X refuses http URLs and ports, so the registered URL is public and
only the stand-in knows where it really goes). The consumer can answer CRCs right or wrong,
fail, stall, or redirect, so every rule X documents is seen from the outside.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from sandbox.stack import make_x_state
from sandbox.x_api import XState, create_app
from sandbox.x_api.activity import (
    ENTERPRISE_RETRY_DELAYS,
    INVALID_AFTER,
    SUBSCRIPTIONS_CREATE,
    WEBHOOKS_CREATE,
)
from tests.waiting import wait_for
from worker.clients.x import XBadRequest, XClient, XForbidden
from worker.clients.x.activity import MENTION_EVENT, REPLY_EVENT, WebhookRefused, XActivity

PUBLIC = "https://hooks.example.test"
HOOK_URL = f"{PUBLIC}/functions/v1/x-webhook"


def sign(secret: str, body: bytes) -> str:
    return (
        "sha256="
        + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    )


@dataclass
class Consumer:
    """A webhook consumer: `mode` decides how it answers (ok, wrong_crc, error, slow, redirect)."""

    secret: str
    mode: str = "ok"
    delay: float = 0.0
    crcs: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "error":
            return web.json_response({"error": "down"}, status=503)
        if self.mode == "redirect":
            raise web.HTTPFound("https://elsewhere.example.test/")
        if request.method == "GET":
            self.crcs += 1
            token = request.query.get("crc_token", "")
            key = self.secret if self.mode != "wrong_crc" else "not-the-secret"
            return web.json_response({"response_token": sign(key, token.encode())})
        body = await request.read()
        self.received.append((dict(request.headers), body))
        return web.json_response({"ok": True})


@dataclass
class World:
    state: XState
    url: str
    consumer: Consumer
    x: XClient
    api: XActivity

    @property
    def activity(self) -> Any:
        return self.state.activity


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def world() -> AsyncIterator[World]:
    state = make_x_state()
    consumer = Consumer(state.consumer_secret)
    hook_app = web.Application()
    hook_app.router.add_route("*", "/{tail:.*}", consumer.handle)
    hook_runner, hook_url = await _serve(hook_app)
    runner, url = await _serve(create_app(state))
    state.activity.route(PUBLIC, hook_url)
    x = XClient(
        api_key=state.consumer_key,
        api_secret=state.consumer_secret,
        access_token=state.access_token,
        access_token_secret=state.access_token_secret,
        bearer_token=state.bearer_token,
        base_url=url,
        timeout=15,
        retry_max_wait=0.05,
    )
    yield World(state, url, consumer, x, XActivity(x))
    await x.aclose()
    await runner.cleanup()
    await hook_runner.cleanup()


async def registered(w: World) -> str:
    webhook = await w.api.create_webhook(HOOK_URL)
    return webhook.id


def envelopes(w: World) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in w.consumer.received]


# --- registration and CRC ----------------------------------------------------------------------


async def test_register_runs_a_crc_against_the_url_and_lists_it(world: World) -> None:
    webhook = await world.api.create_webhook(HOOK_URL)
    assert (webhook.url, webhook.valid) == (HOOK_URL, True)
    assert world.consumer.crcs == 1  # X checks before it answers
    assert await world.api.webhooks() == [webhook]
    assert world.state.request_count(WEBHOOKS_CREATE, status=200) == 1


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.test/x-webhook", "https"),
        ("https://hooks.example.test:8443/x-webhook", "port"),
        ("https://user:pw@hooks.example.test/x-webhook", "credentials"),
    ],
)
async def test_urls_x_refuses(world: World, url: str, why: str) -> None:
    with pytest.raises(WebhookRefused) as info:
        await world.api.create_webhook(url)
    assert info.value.reason == "UrlValidationFailed" and why in str(info.value)
    assert world.consumer.crcs == 0 and await world.api.webhooks() == []


async def test_a_wrong_or_missing_crc_answer_registers_nothing(world: World) -> None:
    world.consumer.mode = "wrong_crc"
    with pytest.raises(WebhookRefused) as info:
        await world.api.create_webhook(HOOK_URL)
    assert info.value.reason == "CrcValidationFailed"
    world.consumer.mode = "ok"
    with pytest.raises(WebhookRefused, match="unreachable"):  # no route: X cannot reach it
        await world.api.create_webhook("https://nowhere.example.test/hook")
    assert await world.api.webhooks() == []


async def test_one_webhook_per_app_on_self_serve_and_no_duplicate_url(world: World) -> None:
    await registered(world)
    with pytest.raises(WebhookRefused) as dup:
        await world.api.create_webhook(HOOK_URL)
    assert dup.value.reason == "DuplicateUrlFailed"
    with pytest.raises(WebhookRefused) as limit:
        await world.api.create_webhook(f"{PUBLIC}/another")
    assert limit.value.reason == "WebhookLimitExceeded"
    assert len(await world.api.webhooks()) == 1


async def test_webhook_endpoints_take_the_app_bearer_only_for_listing(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url) as http:
        anon = await http.get("/2/webhooks")
        assert anon.status_code == 401
        bad = await http.get("/2/webhooks", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


async def test_delete_unknown_and_malformed_ids(world: World) -> None:
    with pytest.raises(WebhookRefused) as info:
        await world.api.delete_webhook("123")
    assert info.value.reason == "WebhookIdInvalid"
    hook = await registered(world)
    assert await world.api.delete_webhook(hook) is True
    assert await world.api.webhooks() == []


# --- the CRC over time ---------------------------------------------------------------------------


async def test_transient_crc_failures_invalidate_only_after_28_hours(world: World) -> None:
    hook = await registered(world)
    webhook = world.activity.webhooks[hook]
    world.consumer.mode = "error"  # 503 on every request: transient
    world.state.advance_time(25 * 3600)  # not validated for 24 h: checked again
    await world.activity.tick()
    assert webhook.valid is True and webhook.last_crc_result == "HTTP 503"
    world.state.advance_time(INVALID_AFTER - 25 * 3600 + 60)
    await world.activity.tick()
    assert webhook.valid is False
    assert (await world.api.webhooks())[0].valid is False
    # Events stop while invalid ...
    sub = await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook)
    assert sub.webhook_id == hook
    fan = world.state.add_user("fan")
    world.state.add_mention(fan.id, "hello @chirpbase_bot")
    assert world.activity.deliveries[-1].outcome == "skipped_invalid"
    # ... until a CRC passes again (PUT /2/webhooks/:id).
    world.consumer.mode = "ok"
    assert await world.api.validate_webhook(hook) is True
    assert webhook.valid is True


async def test_a_wrong_crc_answer_or_a_redirect_invalidates_at_once(world: World) -> None:
    hook = await registered(world)
    world.consumer.mode = "redirect"
    with pytest.raises(WebhookRefused) as info:
        await world.api.validate_webhook(hook)
    assert info.value.reason == "CrcValidationFailed" and "30" in str(info.value)
    assert world.activity.webhooks[hook].valid is False


async def test_periodic_crc_every_30_minutes_only_when_not_validated_for_a_day(
    world: World,
) -> None:
    await registered(world)
    world.state.advance_time(23 * 3600)
    await world.activity.tick()
    assert world.consumer.crcs == 1  # validated less than 24 h ago: no check
    world.state.advance_time(3600)
    await world.activity.tick()
    await world.activity.tick()  # the same moment: not again
    assert world.consumer.crcs == 2


# --- subscriptions -------------------------------------------------------------------------------


async def test_mention_and_reply_subscriptions_need_the_accounts_own_context(
    world: World,
) -> None:
    hook = await registered(world)
    body = {"event_type": MENTION_EVENT, "filter": {"user_id": world.state.me.id},
            "webhook_id": hook}  # fmt: skip
    async with httpx.AsyncClient(base_url=world.url) as http:
        bearer = {"Authorization": f"Bearer {world.state.bearer_token}"}
        refused = await http.post("/2/activity/subscriptions", json=body, headers=bearer)
        assert refused.status_code == 403 and "private event" in refused.json()["detail"]
        public = {**body, "event_type": "post.create"}
        assert (
            await http.post("/2/activity/subscriptions", json=public, headers=bearer)
        ).is_success
        for bad in (
            {**body, "event_type": "post.mention.created"},
            {**body, "extra": 1},
            {**body, "filter": {"user_id": world.state.me.id, "color": "red"}},
            {**body, "webhook_id": "999"},
            {**body, "tag": ""},
        ):
            answer = await http.post("/2/activity/subscriptions", json=bad, headers=bearer)
            assert answer.status_code == 400, bad
    other = world.state.add_user("someone_else")
    with pytest.raises(XForbidden):
        await world.api.subscribe(MENTION_EVENT, other.id, webhook_id=hook)
    sub = await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook, tag="m")
    assert (sub.event_type, sub.user_id, sub.webhook_id, sub.tag) == (
        MENTION_EVENT,
        world.state.me.id,
        hook,
        "m",
    )
    assert world.state.request_count(SUBSCRIPTIONS_CREATE, status=200) == 2


async def test_listing_follows_pages_and_an_empty_list_has_no_data(world: World) -> None:
    assert await world.api.subscriptions() == []
    hook = await registered(world)
    made = [
        await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook)
        for _ in range(5)
    ]
    paged = XActivity(world.x, page_size=2)
    assert [s.id for s in await paged.subscriptions()] == [s.id for s in made]
    assert await world.api.unsubscribe(made[0].id) is True
    with pytest.raises(XBadRequest):  # X names no reason for this one
        await world.api.unsubscribe(made[0].id)
    assert len(await world.api.subscriptions()) == 4


async def test_a_second_identical_subscription_is_created_and_delivers_twice(
    world: World,
) -> None:
    hook = await registered(world)
    for _ in range(2):
        await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook)
    fan = world.state.add_user("fan")
    world.state.add_mention(fan.id, "hey @chirpbase_bot")
    await world.activity.drain()
    assert len(world.consumer.received) == 2  # X does not deduplicate for you


async def test_deleting_a_webhook_leaves_its_subscriptions(world: World) -> None:
    hook = await registered(world)
    await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook)
    await world.api.delete_webhook(hook)
    assert len(await world.api.subscriptions()) == 1


# --- deliveries ----------------------------------------------------------------------------------


async def test_a_mention_is_delivered_signed_in_the_xaa_envelope(world: World) -> None:
    hook = await registered(world)
    await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook, tag="mentions")
    fan = world.state.add_user("fan_ü")
    mention = world.state.add_mention(fan.id, "Grüße, @chirpbase_bot!")
    await wait_for(lambda: world.consumer.received, timeout=5)
    headers, body = world.consumer.received[0]
    assert headers["x-twitter-webhooks-signature"] == sign(world.state.consumer_secret, body)
    assert "Grüße".encode() in body  # raw UTF-8: a receiver must verify the bytes it got
    data = json.loads(body)["data"]
    assert set(data) == {"event_uuid", "filter", "event_type", "tag", "payload", "includes"}
    assert data["event_type"] == MENTION_EVENT and data["tag"] == "mentions"
    assert data["filter"] == {"user_id": world.state.me.id}
    payload = data["payload"]
    assert (payload["id"], payload["author_id"], payload["text"]) == (
        mention.id,
        fan.id,
        mention.text,
    )
    assert payload["entities"]["mentions"][0]["id"] == world.state.me.id
    assert {u["id"] for u in data["includes"]["users"]} == {fan.id, world.state.me.id}
    # An event is billed as an event, not as a Post read (docs.x.com/x-api/activity/event-pricing).
    assert world.activity.events_billed == 1 and world.state.posts_read == 0
    assert world.state.billing.by_operation() == {"activity_event": pytest.approx(0.005)}


async def test_events_are_billed_per_type_once_a_utc_day_on_pay_per_use_only(
    world: World,
) -> None:
    """docs.x.com/x-api/activity/event-pricing: "Per-event billing only applies to users on the
    pay-per-use product. All X Activity API events are delivered via webhooks and billed per
    event" ($0.005 a mention or a reply, $0.001 a like, $0.01 a follow or a DM, `post.delete`
    not billed); x-api/getting-started/pricing.mdx "Webhook events": "charged once per billable
    event, deduplicated within the same 24-hour UTC window"."""
    hook = await registered(world)
    me = world.state.me.id
    for event in (MENTION_EVENT, REPLY_EVENT):
        await world.api.subscribe(event, me, webhook_id=hook)
    fan = world.state.add_user("fan")
    world.state.add_mention(fan.id, "@chirpbase_bot one")
    ours = world.state.create_tweet(me, "ours")
    world.state.add_reply(fan.id, ours.id, "@chirpbase_bot two")
    await world.activity.drain()
    charges = [c for c in world.state.billing.charges if c.operation == "activity_event"]
    assert [(c.units, c.usd) for c in charges] == [(1, 0.005), (1, 0.005)]
    assert world.activity.events_billed == 2 and world.state.posts_read == 0
    assert world.activity.snapshot()["events_billed_usd"] == pytest.approx(0.010)

    # The same event again within the UTC day is free; the next day it is billed again.
    event_uuid = world.activity.deliveries[0].event_uuid
    assert world.state.billing.event(MENTION_EVENT, event_uuid) == 0.0
    world.state.billing.start_new_day()
    assert world.state.billing.event(MENTION_EVENT, event_uuid) == pytest.approx(0.005)
    # Prices by type, as X lists them.
    billing = world.state.billing
    assert billing.event("like.create", "l1") == pytest.approx(0.001)
    assert billing.event("follow.follow", "f1") == pytest.approx(0.01)
    assert billing.event("dm.received", "d1") == pytest.approx(0.01)
    assert billing.event("post.delete", "p1") == 0.0

    # On Enterprise access an event is delivered and not billed per event.
    world.state.access_tier = "enterprise"
    spent = world.state.billing.spent_usd
    world.state.add_mention(fan.id, "@chirpbase_bot three")
    await world.activity.drain()
    assert [d.outcome for d in world.activity.deliveries][-1] == "delivered"
    assert world.state.billing.spent_usd == spent and world.activity.events_billed == 2


async def test_a_reply_fires_reply_create_and_not_an_implicit_mention(world: World) -> None:
    hook = await registered(world)
    me = world.state.me.id
    for event in (MENTION_EVENT, REPLY_EVENT):
        await world.api.subscribe(event, me, webhook_id=hook)
    ours = world.state.create_tweet(me, "a post of ours")
    fan = world.state.add_user("fan")
    world.state.add_reply(fan.id, ours.id, "@chirpbase_bot great post")
    await world.activity.drain()
    assert [e["data"]["event_type"] for e in envelopes(world)] == [REPLY_EVENT]
    reply = envelopes(world)[0]["data"]
    assert reply["payload"]["in_reply_to_tweet_id"] == ours.id
    assert reply["payload"]["display_text_range"][0] == 15
    assert reply["includes"] == {}  # as X's post.reply.create example: the author is not named
    # A reply that also names the account in its own text is a mention too.
    world.state.add_reply(fan.id, ours.id, "@chirpbase_bot thanks @chirpbase_bot")
    # A reply to someone else's reply in the thread is not a direct reply to the account.
    other = world.state.add_user("other")
    nested = world.state.create_tweet(
        other.id, "@fan agreed", in_reply_to=world.state.posted_tweets()[0].id
    )
    world.state.create_tweet(fan.id, "@other yes", in_reply_to=nested.id)
    world.state.create_tweet(me, "our own post")  # not an event for mention/reply subscriptions
    await world.activity.drain()
    assert sorted(e["data"]["event_type"] for e in envelopes(world)[1:]) == [
        MENTION_EVENT,
        REPLY_EVENT,
        REPLY_EVENT,  # "@fan agreed" replies to our post
    ]


async def mention_while_the_consumer_fails(w: World) -> None:
    """A mention delivered while the consumer answers 503; it answers 200 again afterwards."""
    hook = await registered(w)
    await w.api.subscribe(MENTION_EVENT, w.state.me.id, webhook_id=hook)
    w.consumer.mode = "error"
    w.state.add_mention(w.state.add_user("fan").id, "@chirpbase_bot are you there")
    await w.activity.drain()
    w.consumer.mode = "ok"


async def test_a_failed_delivery_is_not_retried_on_self_serve(world: World) -> None:
    await mention_while_the_consumer_fails(world)
    world.state.advance_time(3600)
    await world.activity.tick()
    await world.activity.drain()
    delivery = world.activity.deliveries[0]
    assert (delivery.outcome, [a.status for a in delivery.attempts]) == ("failed", [503])
    assert world.consumer.received == [] and world.activity.events_billed == 1


async def test_enterprise_retries_resend_the_same_event_on_x_clock(world: World) -> None:
    world.activity.retry_delays = ENTERPRISE_RETRY_DELAYS
    await mention_while_the_consumer_fails(world)
    await world.activity.tick()  # not due yet
    assert len(world.activity.deliveries[0].attempts) == 1
    world.state.advance_time(ENTERPRISE_RETRY_DELAYS[0])
    await world.activity.tick()
    await world.activity.drain()
    delivery = world.activity.deliveries[0]
    assert delivery.outcome == "delivered" and [a.status for a in delivery.attempts] == [503, 200]
    assert json.loads(world.consumer.received[0][1])["data"]["event_uuid"] == delivery.event_uuid
    assert world.activity.events_billed == 1  # a retry is the same event


async def test_an_answer_slower_than_the_timeout_is_a_failure(world: World) -> None:
    hook = await registered(world)
    await world.api.subscribe(MENTION_EVENT, world.state.me.id, webhook_id=hook)
    world.activity.response_timeout = 0.2
    world.consumer.delay = 1.0
    world.state.add_mention(world.state.add_user("fan").id, "@chirpbase_bot slow")
    await world.activity.drain()
    attempt = world.activity.deliveries[0].attempts[0]
    assert (attempt.status, attempt.error) == (0, "no answer within 0.2 s")


async def test_control_plane_routes_and_ticks(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url) as http:
        route = {"public": "https://other.example.test", "local": "http://127.0.0.1:9"}
        assert (await http.post("/_sandbox/activity/route", json=route)).is_success
        snap = (await http.post("/_sandbox/activity/tick")).json()
        assert snap["webhooks"] == [] and snap["events_billed"] == 0
        assert (await http.get("/_sandbox/activity")).json()["subscriptions"] == []
