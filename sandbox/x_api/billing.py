"""Pay-per-use billing on the stand-in: prices, once-a-day resources, credits and 402.

Prices (docs.x.com/x-api/getting-started/pricing, "Credit consumption details"): reads are
"charged per resource returned in the response", Posts $0.005, Users $0.010, and "Owned Reads"
$0.001 for ``GET /2/users/{id}/tweets`` and ``/mentions`` when ``{id}`` is the authenticated
user; writes per request: Post: Create $0.015, with a URL $0.200, summoned $0.010, Media
Metadata $0.005. Media upload and the usage endpoint are not on the price list (not billed
here); likes exist only on Enterprise, whose prices are negotiated (not billed here).

"Deduplication": a resource is billed once per 24-hour UTC day, whatever endpoint returned it.

X Activity API events have prices of their own, by event type, billed under the operation
``activity_event`` (not as Post reads): docs.x.com/x-api/activity/event-pricing ("Per-event
billing only applies to users on the pay-per-use product. All X Activity API events are
delivered via webhooks and billed per event": ``post.create``, ``post.mention.create``,
``post.reply.create``, ``post.quote.create``, ``post.repost.create`` and ``profile.update.*``
$0.005, ``like.create`` $0.001, ``follow.*``, ``chat.received`` and ``dm.received`` $0.01;
``post.delete``, ``subscriptions.*``, ``chat.sent``, ``chat.conversation_join``, ``dm.sent`` not
billed), and x-api/getting-started/pricing.mdx "Webhook events" (xdevplatform/docs at
2871328, 2026-08-22: "billed per event delivered ... You are charged once per billable event,
deduplicated within the same 24-hour UTC window as other resources"; it adds ``mute.*`` and
``block.*`` $0.001, ``news.new`` and ``spaces.*`` $0.005, ``dm.read`` and
``dm.indicate_typing`` not billed). Event types on neither page (``broadcast.*``, the other
``chat.*``) are not priced here; the stand-in fires none of them.

Credits: requests are charged as they are served; "it is possible for an account credit balance
to go slightly negative. In this case, API requests will be blocked until you add credits", and
with a spending limit "when the limit is reached, API requests will be blocked until the next
billing cycle". X documents no status or body for the block; client libraries report HTTP 402
(e.g. twitter-api-v2's ApiResponseError with code 402 and a short JSON body), which is what the
stand-in answers, for every endpoint, with a problem body of its own words.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PRICES: dict[str, float] = {
    "post": 0.015,
    "post_with_url": 0.20,
    "reply_summoned": 0.010,
    "media_metadata": 0.005,
    "post_read": 0.005,
    "owned_read": 0.001,
    "user_read": 0.010,
}

# X Activity API events by type (module docs); 0.0: delivered, not billed.
_EVENT_PRICE_GROUPS: dict[float, tuple[str, ...]] = {
    0.005: (
        "post.create",
        "post.mention.create",
        "post.reply.create",
        "post.quote.create",
        "post.repost.create",
        "profile.update.bio",
        "profile.update.profile_picture",
        "profile.update.banner_picture",
        "profile.update.screenname",
        "profile.update.handle",
        "profile.update.geo",
        "profile.update.url",
        "profile.update.verified_badge",
        "profile.update.affiliate_badge",
        "news.new",
        "spaces.start",
        "spaces.end",
    ),
    0.001: ("like.create", "mute.mute", "mute.unmute", "block.block", "block.unblock"),
    0.010: ("follow.follow", "follow.unfollow", "chat.received", "dm.received"),
    0.0: (
        "post.delete",
        "subscriptions.subscribe",
        "subscriptions.unsubscribe",
        "chat.sent",
        "chat.conversation_join",
        "dm.sent",
        "dm.read",
        "dm.indicate_typing",
    ),
}
EVENT_PRICES: dict[str, float] = {
    event: price for price, events in _EVENT_PRICE_GROUPS.items() for event in events
}


@dataclass
class Charge:
    operation: str
    units: int
    usd: float
    at: float


@dataclass
class Billing:
    """What the project has been billed, and its credits and spending limit (None: no limit)."""

    clock: Callable[[], float]
    credits_usd: float | None = None
    spending_limit_usd: float | None = None
    spent_usd: float = 0.0
    charges: list[Charge] = field(default_factory=list)
    _billed: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def blocked(self) -> str | None:
        """Why requests are blocked now (out of credits, spending limit reached), or None."""
        with self._lock:
            if self.credits_usd is not None and self.credits_usd <= 0:
                return "credits"
            if self.spending_limit_usd is not None and self.spent_usd >= self.spending_limit_usd:
                return "spending_limit"
            return None

    def charge(self, operation: str, units: int = 1) -> float:
        """Bill `units` of a write operation."""
        return self._add(operation, units)

    def read(self, operation: str, kind: str, ids: Iterable[str]) -> float:
        """Bill the resources a read returned, each once per UTC day."""
        with self._lock:
            today = self._billed.setdefault(self._day(), set())
            fresh = [i for i in dict.fromkeys(ids) if (kind, i) not in today]
            today.update((kind, i) for i in fresh)
        return self._add(operation, len(fresh)) if fresh else 0.0

    def event(self, event_type: str, event_id: str) -> float:
        """Bill one X Activity API event as X does on pay-per-use (the caller checks the
        access): at its type's price, once per event id per UTC day; an unbilled type, or an
        event already billed today, costs nothing and leaves no charge."""
        price = EVENT_PRICES.get(event_type, 0.0)
        if price <= 0:
            return 0.0
        with self._lock:
            today = self._billed.setdefault(self._day(), set())
            if ("event", event_id) in today:
                return 0.0
            today.add(("event", event_id))
        return self._add("activity_event", 1, unit_usd=price)

    def _add(self, operation: str, units: int, *, unit_usd: float | None = None) -> float:
        usd = (PRICES.get(operation, 0.0) if unit_usd is None else unit_usd) * units
        with self._lock:
            self.spent_usd += usd
            if self.credits_usd is not None:
                self.credits_usd -= usd  # may go slightly negative, as on X
            self.charges.append(Charge(operation, units, usd, self.clock()))
        return usd

    def start_new_day(self) -> None:
        """Forget what was billed today, as midnight UTC does: for simulations that compress
        days (the stand-in's clock is not moved, so timestamps stay comparable)."""
        with self._lock:
            self._billed.pop(self._day(), None)

    def add_credits(self, usd: float) -> None:
        with self._lock:
            self.credits_usd = (self.credits_usd or 0.0) + usd

    def by_operation(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for c in self.charges:
                out[c.operation] = out.get(c.operation, 0.0) + c.usd
            return {k: round(v, 6) for k, v in out.items()}

    def snapshot(self) -> dict[str, Any]:
        return {
            "credits_usd": self.credits_usd,
            "spending_limit_usd": self.spending_limit_usd,
            "spent_usd": round(self.spent_usd, 6),
            "by_operation": self.by_operation(),
        }


def payment_required(reason: str, account_id: str) -> dict[str, Any]:
    """The stand-in's 402 body (X's own wording is not documented)."""
    detail = (
        f"Your enrolled account [{account_id}] does not have any credits to fulfill this request."
        if reason == "credits"
        else f"Your enrolled account [{account_id}] reached its spending limit for this billing "
        "cycle."
    )
    return {"title": "Payment Required", "detail": detail, "type": "about:blank", "status": 402}
