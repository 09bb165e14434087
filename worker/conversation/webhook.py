"""The account's X Activity API webhook: register it, say how it is doing, remove it.

`register` makes X deliver the account's mentions and replies to the x-webhook edge function:

1. the webhook: an existing one for the same URL is reused (re-checked with a CRC when X marks
   it invalid), otherwise `POST /2/webhooks` (X runs its CRC against the function before it
   answers);
2. the subscriptions: `post.mention.create` and `post.reply.create` for the account, on that
   webhook, created only when X does not already have them (X would accept a second one and
   deliver every event twice); extra copies left by an earlier run are deleted;
3. the ids are recorded in `x_account` and `x_activity_subscriptions` after each step, so a
   run killed half way leaves nothing unknown: the next run finds what X has and goes on;
4. a webhook chirpbase registered before for another URL is removed once the new one is in
   place (its subscriptions would deliver every event twice, and X bills each delivery).

X is the truth and is asked first every time, which is what makes `register` idempotent:
running it twice creates nothing twice. When a call's outcome is unknown (timeout, dropped
connection), the list is read again before anything is created again.

`remove` deletes the subscriptions on the webhook first (X keeps a deleted webhook's
subscriptions, still counted against the app's limit), then the webhook, then the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from worker.clients.x.activity import (
    MENTION_EVENT,
    REPLY_EVENT,
    ActivitySubscription,
    Webhook,
    WebhookRefused,
)
from worker.clients.x.errors import XError

EVENTS = (MENTION_EVENT, REPLY_EVENT)
TAG = "chirpbase"
# Deliveries quieter than this while polling still finds mentions mean the webhook is not
# receiving them (shown by `status`).
QUIET_AFTER_S = 6 * 3600


class WebhookError(Exception):
    """Registration cannot go on; the message says why and what to do."""


class ActivityApi(Protocol):
    """What this module needs from X (worker.clients.x.activity.XActivity)."""

    async def webhooks(self) -> list[Webhook]: ...
    async def create_webhook(self, url: str) -> Webhook: ...
    async def validate_webhook(self, webhook_id: str) -> bool: ...
    async def delete_webhook(self, webhook_id: str) -> bool: ...
    async def subscriptions(self) -> list[ActivitySubscription]: ...
    async def subscribe(
        self, event_type: str, user_id: str, *, webhook_id: str, tag: str | None = None
    ) -> ActivitySubscription: ...
    async def unsubscribe(self, subscription_id: str) -> bool: ...


class Store(Protocol):
    """The named-query interface of worker.db.Database."""

    async def fetchrow(self, name: str, params: Any = None) -> dict[str, Any] | None: ...
    async def fetch(self, name: str, params: Any = None) -> list[dict[str, Any]]: ...
    async def execute(self, name: str, params: Any = None) -> int: ...


def url_problem(url: str) -> str | None:
    """Why X would refuse ``url`` as a webhook (webhooks/introduction.mdx "Webhook
    requirements": https, publicly reachable, no port), or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme != "https":
        return "X delivers only to https URLs"
    if not parts.hostname or parts.username or parts.password:
        return "the URL must name a host and carry no credentials"
    if port is not None:
        return "X refuses URLs with a port"
    if parts.hostname in ("localhost", "127.0.0.1", "::1") or parts.hostname.endswith(".local"):
        return "X must reach it from the internet"
    if len(url) > 200:
        return "X takes URLs of at most 200 characters"
    return None


def default_url(supabase_url: str) -> str:
    """The deployed x-webhook function: ``<SUPABASE_URL>/functions/v1/x-webhook``."""
    return supabase_url.rstrip("/") + "/functions/v1/x-webhook"


@dataclass
class Registration:
    webhook: Webhook
    subscriptions: list[ActivitySubscription]
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions)


async def register(
    x: ActivityApi, db: Store, *, url: str, user_id: str, replace: bool = False
) -> Registration:
    """Make X deliver ``user_id``'s mentions and replies to ``url`` (see the module docs)."""
    problem = url_problem(url)
    if problem:
        raise WebhookError(f"cannot register {url}: {problem}")
    actions: list[str] = []
    previous = (await db.fetchrow("webhook_registration") or {}).get("webhook_id")
    webhook = await _webhook_for(x, url, replace=replace, actions=actions)
    await db.execute("save_webhook", {"webhook_id": webhook.id, "url": url, "valid": webhook.valid})
    if previous and previous != webhook.id:
        # chirpbase's earlier webhook (another URL): its subscriptions would deliver (and be
        # billed) a second time. The new one is in place first, so no event falls in a gap.
        old = next((h for h in await x.webhooks() if h.id == previous), None)
        if old is not None:
            await _delete_webhook(x, old, actions)

    subs = await x.subscriptions()
    kept: list[ActivitySubscription] = []
    for event in EVENTS:
        same = [
            s
            for s in subs
            if s.event_type == event and s.user_id == user_id and s.webhook_id == webhook.id
        ]
        if same:
            kept.append(same[0])
            for extra in same[1:]:
                await x.unsubscribe(extra.id)
                actions.append(f"deleted duplicate subscription {extra.id} ({event})")
        else:
            kept.append(await _subscribe(x, event, user_id, webhook.id))
            actions.append(f"subscribed {event}")
        await _save_subscription(db, kept[-1])
    await db.execute("forget_subscriptions_except", {"keep": [s.id for s in kept]})
    return Registration(webhook, kept, actions)


async def _webhook_for(x: ActivityApi, url: str, *, replace: bool, actions: list[str]) -> Webhook:
    hooks = await x.webhooks()
    mine = next((h for h in hooks if h.url == url), None)
    if mine is not None:
        if not mine.valid:
            try:
                valid = await x.validate_webhook(mine.id)
            except WebhookRefused as exc:
                raise WebhookError(_crc_help(url, exc)) from None
            actions.append("re-validated the webhook (CRC passed)")
            mine = Webhook(mine.id, mine.url, valid, mine.created_at)
        return mine
    if replace:
        for other in hooks:
            await _delete_webhook(x, other, actions)
    try:
        created = await x.create_webhook(url)
    except WebhookRefused as exc:
        if exc.reason == "DuplicateUrlFailed":  # registered meanwhile (another run)
            found = next((h for h in await x.webhooks() if h.url == url), None)
            if found is not None:
                return found
        if exc.reason == "WebhookLimitExceeded":
            others = ", ".join(f"{h.id} ({h.url})" for h in hooks) or "none listed"
            raise WebhookError(
                f"X allows no more webhooks for this app; registered: {others}. Remove the old "
                "one (chirpbase webhook remove --webhook-id ID) or run register --replace."
            ) from None
        if exc.reason == "CrcValidationFailed":
            raise WebhookError(_crc_help(url, exc)) from None
        raise WebhookError(f"X refused the webhook {url}: {exc.detail or exc}") from None
    except XError as exc:
        if not exc.outcome_unknown:
            raise
        # X may have created it: look before anything is created again.
        found = next((h for h in await x.webhooks() if h.url == url), None)
        if found is None:
            raise WebhookError(
                f"registering {url} got no answer from X ({exc}); run it again"
            ) from None
        created = found
    actions.append(f"registered webhook {created.id}")
    return created


async def _subscribe(
    x: ActivityApi, event: str, user_id: str, webhook_id: str
) -> ActivitySubscription:
    try:
        return await x.subscribe(event, user_id, webhook_id=webhook_id, tag=TAG)
    except XError as exc:
        if not exc.outcome_unknown:
            raise
        for sub in await x.subscriptions():
            if sub.event_type == event and sub.user_id == user_id and sub.webhook_id == webhook_id:
                return sub
        raise WebhookError(
            f"subscribing {event} got no answer from X ({exc}); run it again"
        ) from None


async def _save_subscription(db: Store, sub: ActivitySubscription) -> None:
    await db.execute(
        "save_subscription",
        {
            "subscription_id": sub.id,
            "event_type": sub.event_type,
            "user_id": sub.user_id,
            "webhook_id": sub.webhook_id,
            "tag": sub.tag,
        },
    )


def _crc_help(url: str, exc: WebhookRefused) -> str:
    return (
        f"X's CRC check of {url} failed ({exc.detail or exc.reason}). Is x-webhook deployed "
        "there, and is its X_API_SECRET the consumer secret of this X app? "
        "(supabase secrets set X_API_SECRET=...; supabase functions deploy x-webhook)"
    )


async def _delete_webhook(x: ActivityApi, hook: Webhook, actions: list[str]) -> None:
    for sub in await x.subscriptions():
        if sub.webhook_id == hook.id:
            await x.unsubscribe(sub.id)
            actions.append(f"deleted subscription {sub.id} ({sub.event_type})")
    try:
        await x.delete_webhook(hook.id)
    except WebhookRefused as exc:
        if exc.reason != "WebhookIdInvalid":  # already gone
            raise
    actions.append(f"deleted webhook {hook.id} ({hook.url})")


async def remove(x: ActivityApi, db: Store, *, webhook_id: str | None = None) -> list[str]:
    """Undo `register`: the subscriptions on the webhook, the webhook, the rows. Without
    ``webhook_id``, the one recorded in x_account. Nothing to undo → no actions."""
    row = await db.fetchrow("webhook_registration") or {}
    target = webhook_id or row.get("webhook_id")
    actions: list[str] = []
    hooks = await x.webhooks()
    hook = next((h for h in hooks if h.id == target), None) if target else None
    if hook is not None:
        await _delete_webhook(x, hook, actions)
    elif target:
        # The webhook is gone at X already; its subscriptions may not be.
        for sub in await x.subscriptions():
            if sub.webhook_id == target:
                await x.unsubscribe(sub.id)
                actions.append(f"deleted subscription {sub.id} ({sub.event_type})")
    if target and target == row.get("webhook_id"):
        await db.execute("clear_webhook")
        await db.execute("forget_subscriptions_except", {"keep": []})
    return actions


@dataclass
class WebhookHealth:
    """What `chirpbase webhook status` shows."""

    # ok | not_registered | missing_at_x | invalid | missing_subscriptions | quiet | x_unreachable
    state: str
    message: str
    url: str | None
    webhook_id: str | None
    valid: bool | None
    subscriptions: list[ActivitySubscription]
    missing_events: list[str]
    last_event_at: datetime | None
    polled_first_since_registered: int

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "url": self.url,
            "webhook_id": self.webhook_id,
            "valid": self.valid,
            "subscriptions": [vars(s) for s in self.subscriptions],
            "missing_events": self.missing_events,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "polled_first_since_registered": self.polled_first_since_registered,
        }


async def health(
    x: ActivityApi, db: Store, *, now: datetime | None = None
) -> tuple[WebhookHealth, dict[str, Any]]:
    """The webhook's health as X reports it, next to what chirpbase recorded; and the
    ingestion volume row (for the cost comparison)."""
    row = await db.fetchrow("webhook_registration") or {}
    volume = await db.fetchrow("ingestion_volume") or {}
    url, webhook_id, user_id = row.get("webhook_url"), row.get("webhook_id"), row.get("user_id")
    last = row.get("webhook_last_event_at")
    polled_first = int(volume.get("polled_first_since_registered") or 0)
    try:
        hooks = await x.webhooks()
        subs = [s for s in await x.subscriptions() if webhook_id and s.webhook_id == webhook_id]
    except XError as exc:
        # What chirpbase recorded (and the cost comparison) is still worth showing.
        recorded = row.get("webhook_valid")
        unknown = WebhookHealth(
            "x_unreachable",
            f"X did not answer: {exc}",
            url,
            webhook_id,
            recorded if isinstance(recorded, bool) else None,
            [],
            [],
            last,
            polled_first,
        )
        return unknown, volume
    hook = next((h for h in hooks if h.id == webhook_id), None) if webhook_id else None
    if hook is not None:
        await db.execute("mark_webhook_checked", {"webhook_id": hook.id, "valid": hook.valid})
    ours = [s for s in subs if s.user_id == user_id]
    missing = [e for e in EVENTS if not any(s.event_type == e for s in ours)]

    def result(state: str, message: str) -> tuple[WebhookHealth, dict[str, Any]]:
        valid = hook.valid if hook is not None else None
        health = WebhookHealth(
            state, message, url, webhook_id, valid, subs, missing, last, polled_first
        )
        return health, volume

    if not webhook_id:
        others = ", ".join(h.url for h in hooks)
        extra = f" (this X app has: {others})" if others else ""
        return result("not_registered", f"no webhook registered by chirpbase{extra}")
    if hook is None:
        return result("missing_at_x", f"X has no webhook {webhook_id} any more: run register")
    if not hook.valid:
        return result(
            "invalid", "X marked the webhook invalid (its CRC failed): run register to re-check"
        )
    if missing:
        return result(
            "missing_subscriptions", f"not subscribed to {', '.join(missing)}: run register"
        )
    moment = now or datetime.now(UTC)
    registered = row.get("webhook_registered_at")
    since = last or registered
    if polled_first and since is not None and (moment - since).total_seconds() > QUIET_AFTER_S:
        return result(
            "quiet",
            f"no delivery for {(moment - since).total_seconds() / 3600:.0f} h while polling "
            f"found {polled_first} mention(s) first: check the function's logs and X_API_SECRET",
        )
    return result("ok", "valid, subscribed to mentions and replies")
