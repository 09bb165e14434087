"""The X Activity API (XAA) and V2 webhooks, as the X stand-in serves them.

Sources (X's docs repository `xdevplatform/docs`, read at its 2026-08-22 commit, and its
`openapi.json` v2.167):

* `x-api/webhooks/introduction.mdx`, `x-api/webhooks/quickstart.mdx`: registering a URL
  (`POST /2/webhooks`, app bearer), the CRC sent at once and then periodically, `valid`,
  `PUT` to re-check, `DELETE`, the failure reasons (`CrcValidationFailed`,
  `UrlValidationFailed`, `DuplicateUrlFailed`, `WebhookLimitExceeded`, `WebhookIdInvalid`),
  the URL rules (https, no port), "respond within 10 seconds", "return 200", the
  invalidation rules (a wrong CRC answer or a 3xx at once; transient failures only after 28 h
  without a successful check), and "your webhook may receive duplicate events".
* `x-api/activity/introduction.mdx`, `quickstart.mdx`, `event-payloads.mdx`: subscriptions
  (`POST/GET/DELETE /2/activity/subscriptions`, `event_type` + `filter.user_id` + optional
  `webhook_id` and `tag`), which events are private (mentions and replies need the user's own
  context), when `post.mention.create` and `post.reply.create` fire, the delivery envelope
  (`data.event_uuid`, `filter`, `event_type`, `tag`, `payload` = a Post object, `includes`),
  the 1,500 subscriptions of self-serve tiers.
* Billing: docs.x.com/x-api/activity/event-pricing ("Per-event billing only applies to users
  on the pay-per-use product. All X Activity API events are delivered via webhooks and billed
  per event", at a price per event type) and x-api/getting-started/pricing.mdx "Webhook
  events" ("charged once per billable event, deduplicated within the same 24-hour UTC
  window"): on pay-per-use access each event is billed at its type's price
  (``billing.EVENT_PRICES``) under its own operation, ``activity_event``, once per
  ``event_uuid`` per UTC day; it is not a Post read (it does not count against the monthly
  Post-read cap nor in ``GET /2/usage/tweets``). On the other tiers events are not billed per
  event.
* `x-api/account-activity/introduction.mdx` ("Feature summary"): one webhook on pay-per-use.
* `x-api/fundamentals/rate-limits.mdx` ("Activity & Webhooks"): 450 or 500 requests / 15 min.
* `openapi.json`: the request schemas (additionalProperties false, the event_type enum,
  tag 1..200 characters, ids `^[0-9]{1,19}$`), the security of each operation, and the
  create response `{"data": {"subscription": {...}}}` (the quickstart shows the subscription
  directly under `data`: the spec, the newer source, is followed here).

Where the docs are silent the stand-in takes the less convenient reading, and says so:

* Delivery retries are documented only for the Enterprise Account Activity API (three over
  five minutes, `developer.x.com/.../account-activity-api/guides/activity-retries`); the V2
  webhook docs promise none. A failed delivery is therefore lost unless `retry_delays` is set
  (Enterprise), and chirpbase's mention polling is what recovers it.
* Nothing says X refuses a second identical subscription: it is created and delivers too
  (the same event twice). Clients must look before they subscribe.
* Deleting a webhook leaves its subscriptions in place (they count against the limit and
  deliver nowhere). Clients must delete subscriptions first.
* "Billed per event delivered" does not say whether an event the webhook failed to accept
  counts: the stand-in bills it when X sends it, at the first attempt, whatever the answer
  (retries carry the same ``event_uuid`` and are not billed again).

Tests drive :class:`ActivityState` (``XState.activity``): :meth:`ActivityState.route` maps a
public https origin to a local server (the stand-in never leaves the machine), :meth:`tick`
runs the CRC checks and retries that are due on the stand-in's clock, and :meth:`drain` waits
for deliveries in flight.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp

from sandbox.x_api.model import RateLimitRule
from sandbox.x_api.payloads import _display_start, _render_post, _render_user, _replied_to

if TYPE_CHECKING:
    from sandbox.x_api.model import Tweet
    from sandbox.x_api.state import XState

WEBHOOKS_CREATE = "POST /2/webhooks"
WEBHOOKS_LIST = "GET /2/webhooks"
WEBHOOKS_VALIDATE = "PUT /2/webhooks/:webhook_id"
WEBHOOKS_DELETE = "DELETE /2/webhooks/:webhook_id"
SUBSCRIPTIONS_CREATE = "POST /2/activity/subscriptions"
SUBSCRIPTIONS_LIST = "GET /2/activity/subscriptions"
SUBSCRIPTIONS_DELETE = "DELETE /2/activity/subscriptions/:subscription_id"

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/2/webhooks$"), WEBHOOKS_CREATE),
    ("GET", re.compile(r"^/2/webhooks$"), WEBHOOKS_LIST),
    ("PUT", re.compile(r"^/2/webhooks/(?P<webhook_id>[^/]+)$"), WEBHOOKS_VALIDATE),
    ("DELETE", re.compile(r"^/2/webhooks/(?P<webhook_id>[^/]+)$"), WEBHOOKS_DELETE),
    ("POST", re.compile(r"^/2/activity/subscriptions$"), SUBSCRIPTIONS_CREATE),
    ("GET", re.compile(r"^/2/activity/subscriptions$"), SUBSCRIPTIONS_LIST),
    (
        "DELETE",
        re.compile(r"^/2/activity/subscriptions/(?P<subscription_id>[^/]+)$"),
        SUBSCRIPTIONS_DELETE,
    ),
]
# openapi.json `security` of each operation (user = OAuth 1.0a user context, app = bearer).
# The prose says "all webhook endpoints require the app-only bearer token"; the spec also lists
# the user token for create, validate and delete. chirpbase uses the bearer token for all four.
AUTH: dict[str, frozenset[str]] = {
    WEBHOOKS_CREATE: frozenset({"app", "user"}),
    WEBHOOKS_LIST: frozenset({"app"}),
    WEBHOOKS_VALIDATE: frozenset({"app", "user"}),
    WEBHOOKS_DELETE: frozenset({"app", "user"}),
    SUBSCRIPTIONS_CREATE: frozenset({"app", "user"}),
    SUBSCRIPTIONS_LIST: frozenset({"app", "user"}),
    SUBSCRIPTIONS_DELETE: frozenset({"app"}),
}
RATE_LIMITS = {
    WEBHOOKS_CREATE: RateLimitRule(450),
    WEBHOOKS_LIST: RateLimitRule(450),
    WEBHOOKS_VALIDATE: RateLimitRule(450),
    WEBHOOKS_DELETE: RateLimitRule(450),
    SUBSCRIPTIONS_CREATE: RateLimitRule(500),
    SUBSCRIPTIONS_LIST: RateLimitRule(500),
    SUBSCRIPTIONS_DELETE: RateLimitRule(500),
}

# openapi.json createActivitySubscription: the event_type enum.
EVENT_TYPES = frozenset(
    """profile.update.bio profile.update.profile_picture profile.update.banner_picture
    profile.update.screenname profile.update.geo profile.update.url
    profile.update.verified_badge profile.update.affiliate_badge profile.update.handle news.new
    follow.follow follow.unfollow spaces.start spaces.end broadcast.start broadcast.end
    broadcast.chat chat.received chat.sent chat.conversation.join chat.conversation_join
    chat.conversation.member_added chat.conversation.member_removed
    chat.conversation.admin_added chat.conversation.admin_removed chat.update.group_name
    chat.update.restrictions dm.sent dm.received dm.indicate_typing dm.read post.create
    post.delete post.mention.create post.reply.create post.quote.create post.repost.create
    like.create mute.mute mute.unmute block.block block.unblock""".split()  # noqa: SIM905 - 42 names, read as a list
)
# activity/introduction.mdx "Private events": only for a user who authorized the app, in
# that user's own context.
PRIVATE_EVENT_PREFIXES = ("like.", "chat.", "dm.", "mute.", "block.", "broadcast.chat")
PRIVATE_EVENT_TYPES = frozenset(
    {"post.mention.create", "post.reply.create", "post.quote.create", "post.repost.create"}
)

DAY = 86_400.0
# webhooks/introduction.mdx "Webhook validation".
CRC_RECHECK_AFTER = 24 * 3600.0  # checked again only when not validated for this long ...
CRC_INTERVAL = 30 * 60.0  # ... every 30 minutes
INVALID_AFTER = 28 * 3600.0  # transient failures invalidate after 28 h without a pass
RESPONSE_TIMEOUT = 10.0  # "Respond within 10 seconds"
ENTERPRISE_RETRY_DELAYS = (3.0, 30.0, 300.0)  # Enterprise AAA retries: 3 s, 30 s, 5 min
ID = re.compile(r"^[0-9]{1,19}$")  # openapi.json: webhook and subscription ids
_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")


def _iso(at: float) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def signature(secret: str, body: bytes) -> str:
    """`x-twitter-webhooks-signature` (and the CRC `response_token`): sha256=base64(HMAC)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


@dataclass
class Webhook:
    id: str
    url: str
    created_at: float
    valid: bool = True
    last_valid_at: float | None = None
    last_crc_at: float | None = None
    last_crc_result: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": _iso(self.created_at),
            "id": self.id,
            "url": self.url,
            "valid": self.valid,
        }


@dataclass
class Subscription:
    id: str
    event_type: str
    filter: dict[str, str]
    created_at: float
    webhook_id: str | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "created_at": _iso(self.created_at),
            "event_type": self.event_type,
            "filter": dict(self.filter),
            "subscription_id": self.id,
            "updated_at": _iso(self.created_at),
        }
        if self.tag is not None:
            data["tag"] = self.tag
        if self.webhook_id is not None:
            data["webhook_id"] = self.webhook_id
        return data


@dataclass(frozen=True)
class Attempt:
    at: float
    status: int  # HTTP status, 0 when no answer (timeout, connection refused, no route)
    error: str | None = None


@dataclass
class Delivery:
    """One event sent (or meant to be sent) to one webhook."""

    event_uuid: str
    event_type: str
    subscription_id: str
    webhook_id: str
    post_id: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)
    outcome: Literal["pending", "delivered", "failed", "skipped_invalid"] = "pending"
    retry_at: float | None = None

    @property
    def envelope(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass(frozen=True)
class CrcResult:
    passed: bool
    definitive: bool  # a wrong answer or a redirect: invalid at once
    detail: str


class ActivityState:
    """Webhooks, subscriptions and deliveries of the stand-in's one app (see module docs)."""

    def __init__(
        self,
        x: XState,
        *,
        webhook_limit: int = 1,
        subscription_limit: int = 1500,
        retry_delays: tuple[float, ...] = (),
        response_timeout: float = RESPONSE_TIMEOUT,
    ) -> None:
        self.x = x
        self.webhook_limit = webhook_limit
        self.subscription_limit = subscription_limit
        self.retry_delays = retry_delays
        self.response_timeout = response_timeout
        self.webhooks: dict[str, Webhook] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self.crc_log: list[tuple[str, CrcResult]] = []
        self.events_billed = 0  # events charged (pay-per-use), each once per UTC day
        self.events_billed_usd = 0.0
        self._routes: dict[str, str] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._inflight: set[concurrent.futures.Future[None]] = set()
        for endpoint, rule in RATE_LIMITS.items():
            x.rate_rules.setdefault(endpoint, rule)

    def new_id(self) -> str:
        return self.x._new_id()

    # --- the network the stand-in may reach ----------------------------------------------

    def route(self, public_origin: str, local_origin: str) -> None:
        """Requests X would send to ``public_origin`` (``https://host``) go to ``local_origin``
        (``http://127.0.0.1:PORT``) instead. An origin without a route is unreachable."""
        parts = urlsplit(public_origin)
        self._routes[f"{parts.scheme}://{parts.netloc}".lower()] = local_origin.rstrip("/")

    def _local_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        local = self._routes.get(f"{parts.scheme}://{parts.netloc}".lower())
        if local is None:
            return None
        return local + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    async def _request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str]
    ) -> tuple[int, bytes, str | None]:
        """(status, body, error): status 0 with the error when there was no answer."""
        local = self._local_url(url)
        if local is None:
            return 0, b"", "host unreachable from the stand-in (no route)"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method,
                local,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.response_timeout),
            ) as resp:
                return resp.status, await resp.read(), None
        except TimeoutError:
            return 0, b"", f"no answer within {self.response_timeout:g} s"
        except aiohttp.ClientError as exc:
            return 0, b"", f"{type(exc).__name__}"

    # --- lifecycle (bound to the server's loop) ---------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop
            pending = [d for d in self.deliveries if d.outcome == "pending" and not d.attempts]
        for delivery in pending:
            self._schedule(delivery)

    async def close(self) -> None:
        await self.drain(within=self.response_timeout + 1)
        if self._session is not None:
            await self._session.close()
            self._session = None
        with self._lock:
            self._loop = None

    async def drain(self, *, within: float = 15.0) -> None:
        """Wait until every delivery in flight has its answer (from any event loop)."""
        async with asyncio.timeout(within):
            while True:
                with self._lock:
                    pending = [f for f in self._inflight if not f.done()]
                if not pending:
                    return
                await asyncio.wait([asyncio.wrap_future(f) for f in pending])

    # --- CRC ------------------------------------------------------------------------------------

    async def crc_check(self, webhook: Webhook) -> CrcResult:
        """`GET <url>?crc_token=...`; the answer must be `{"response_token": "sha256=..."}`,
        HMAC-SHA256 of the token with the app's consumer secret (webhooks/quickstart.mdx)."""
        token = secrets.token_urlsafe(24)
        sep = "&" if urlsplit(webhook.url).query else "?"
        status, body, error = await self._request(
            "GET", f"{webhook.url}{sep}crc_token={token}", headers={"accept": "application/json"}
        )
        expected = signature(self.x.consumer_secret, token.encode())
        if error is not None:
            result = CrcResult(False, False, error)
        elif 300 <= status < 400:
            result = CrcResult(False, True, f"HTTP {status} (redirects are not followed)")
        elif not 200 <= status < 300:
            result = CrcResult(False, False, f"HTTP {status}")
        else:
            try:
                answer = json.loads(body).get("response_token")
            except (ValueError, AttributeError):
                answer = None
            ok = isinstance(answer, str) and hmac.compare_digest(answer, expected)
            result = CrcResult(ok, not ok, "ok" if ok else "Invalid response_token")
        now = self.x.now()
        with self._lock:
            webhook.last_crc_at = now
            webhook.last_crc_result = result.detail
            if result.passed:
                webhook.valid, webhook.last_valid_at = True, now
            elif result.definitive or now - (webhook.last_valid_at or now) > INVALID_AFTER:
                webhook.valid = False
            self.crc_log.append((webhook.id, result))
        return result

    async def tick(self) -> None:
        """Run what is due on the stand-in's clock: periodic CRC checks, delivery retries."""
        now = self.x.now()
        with self._lock:
            due = [
                w
                for w in self.webhooks.values()
                if (w.last_valid_at is None or now - w.last_valid_at >= CRC_RECHECK_AFTER)
                and (w.last_crc_at is None or now - w.last_crc_at >= CRC_INTERVAL)
            ]
            retries = [d for d in self.deliveries if d.retry_at is not None and d.retry_at <= now]
            for d in retries:
                d.retry_at = None
        for webhook in due:
            await self.crc_check(webhook)
        await asyncio.gather(*(self._attempt(d) for d in retries))

    # --- events ---------------------------------------------------------------------------------

    def on_post(self, tweet: Tweet) -> None:
        """Called by XState for every post created: queue the events it fires."""
        with self._lock:
            subs = list(self.subscriptions.values())
            for sub in subs:
                user_id = sub.filter.get("user_id")
                if not user_id or not self._fires(sub.event_type, tweet, user_id):
                    continue
                webhook = self.webhooks.get(sub.webhook_id or "")
                if webhook is None:
                    continue  # stream-only or orphaned subscription: no webhook delivery
                delivery = Delivery(
                    event_uuid=str(secrets.randbits(63) - (1 << 62)),
                    event_type=sub.event_type,
                    subscription_id=sub.id,
                    webhook_id=webhook.id,
                    post_id=tweet.id,
                    body=self._envelope(sub, tweet),
                )
                self.deliveries.append(delivery)
                if not webhook.valid:
                    delivery.outcome = "skipped_invalid"  # "stop receiving events"
                elif self._loop is not None:
                    self._schedule(delivery)

    def _fires(self, event_type: str, tweet: Tweet, user_id: str) -> bool:
        """activity/introduction.mdx "Post events", for the filtered user ``user_id``."""
        if event_type == "post.create":
            return tweet.author_id == user_id
        if tweet.author_id == user_id:
            return False  # the other post events are about what other users do
        if event_type == "post.mention.create":
            # "explicitly @mentions the filtered user in the body of a Post. Does not fire for
            # implicit mentions carried by replies": the handles X puts before a reply's text.
            return user_id in self._explicit_mentions(tweet)
        if event_type == "post.reply.create":
            # "a direct reply to a Post by the filtered user ... (not for replies to replies)"
            parent = _replied_to(tweet)
            parent_tweet = self.x.tweets.get(parent) if parent else None
            return parent_tweet is not None and parent_tweet.author_id == user_id
        return False  # quotes, reposts, likes ...: not modelled by the stand-in

    def _explicit_mentions(self, tweet: Tweet) -> set[str]:
        text = tweet.note_text if tweet.note_text is not None else tweet.text
        start = _display_start(text) if tweet.referenced_tweets else 0
        found = set()
        for match in _MENTION.finditer(text, start):
            user = self.x.find_user(match.group(1))
            if user is not None:
                found.add(user.id)
        return found

    def _envelope(self, sub: Subscription, tweet: Tweet) -> bytes:
        """The webhook body (event-payloads.mdx "Event envelope"): one event, its Post object
        as `payload`. `includes` as X's examples show it: the author and the mentioned user
        and the Post for a mention, nothing (`{}`) for a reply. Non-ASCII is sent as UTF-8."""
        data: dict[str, Any] = {
            "event_uuid": "",
            "filter": dict(sub.filter),
            "event_type": sub.event_type,
        }
        if sub.tag is not None:
            data["tag"] = sub.tag
        data["payload"] = _render_post(tweet)
        if sub.event_type == "post.reply.create":
            data["includes"] = {}
        else:
            user_ids = dict.fromkeys((tweet.author_id, sub.filter["user_id"]))
            users = [self.x.users[u] for u in user_ids if u in self.x.users]
            data["includes"] = {
                "users": [_render_user(u) for u in users],
                "tweets": [_render_post(tweet)],
            }
        return json.dumps({"data": data}, ensure_ascii=False).encode()

    def _schedule(self, delivery: Delivery) -> None:
        loop = self._loop
        if loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._attempt(delivery), loop)
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(lambda f: self._inflight.discard(f))

    async def _attempt(self, delivery: Delivery) -> None:
        # The event_uuid is set once, at the first attempt: a retry carries the same body.
        if not delivery.attempts:
            envelope = delivery.envelope
            envelope["data"]["event_uuid"] = delivery.event_uuid
            delivery.body = json.dumps(envelope, ensure_ascii=False).encode()
            self._bill(delivery)
        webhook = self.webhooks.get(delivery.webhook_id)
        if webhook is None or not webhook.valid:
            delivery.outcome = "skipped_invalid" if webhook else "failed"
            return
        headers = {
            "content-type": "application/json; charset=utf-8",
            "x-twitter-webhooks-signature": signature(self.x.consumer_secret, delivery.body),
        }
        status, _body, error = await self._request(
            "POST", webhook.url, body=delivery.body, headers=headers
        )
        now = self.x.now()
        with self._lock:
            delivery.attempts.append(Attempt(now, status, error))
            if status == 200:  # "Return 200 status to acknowledge receipt"
                delivery.outcome = "delivered"
            elif len(delivery.attempts) <= len(self.retry_delays):
                delivery.retry_at = now + self.retry_delays[len(delivery.attempts) - 1]
            else:
                delivery.outcome = "failed"

    def _bill(self, delivery: Delivery) -> None:
        """What X charges for sending an event (module docs, "Billing")."""
        if self.x.access_tier != "pay_per_use":
            return  # "Per-event billing only applies to users on the pay-per-use product"
        usd = self.x.billing.event(delivery.event_type, delivery.event_uuid)
        if usd > 0:
            with self._lock:
                self.events_billed += 1
                self.events_billed_usd += usd

    # --- views ------------------------------------------------------------------------------

    def delivered(self, event_type: str | None = None) -> list[Delivery]:
        with self._lock:
            return [
                d
                for d in self.deliveries
                if d.outcome == "delivered" and (event_type is None or d.event_type == event_type)
            ]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "webhooks": [
                    w.to_json() | {"last_crc": w.last_crc_result} for w in self.webhooks.values()
                ],
                "subscriptions": [s.to_json() for s in self.subscriptions.values()],
                "deliveries": [
                    {
                        "event_uuid": d.event_uuid,
                        "event_type": d.event_type,
                        "post_id": d.post_id,
                        "webhook_id": d.webhook_id,
                        "outcome": d.outcome,
                        "attempts": [vars(a) for a in d.attempts],
                    }
                    for d in self.deliveries
                ],
                "events_billed": self.events_billed,
                "events_billed_usd": round(self.events_billed_usd, 6),
            }
