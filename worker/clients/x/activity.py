"""The X Activity API (XAA) and V2 webhooks: registering a URL, subscribing the account.

Calls (X's docs: `x-api/webhooks/quickstart.mdx`, `x-api/activity/quickstart.mdx`, and the
operations of `openapi.json` v2.167):

    POST   /2/webhooks                          create_webhook   app bearer; X runs a CRC first
    GET    /2/webhooks                          webhooks         app bearer
    PUT    /2/webhooks/:id                      validate_webhook app bearer; a CRC now
    DELETE /2/webhooks/:id                      delete_webhook   app bearer
    POST   /2/activity/subscriptions            subscribe        user context (private events)
    GET    /2/activity/subscriptions            subscriptions    app bearer, every page
    DELETE /2/activity/subscriptions/:id        unsubscribe      app bearer (the only auth X takes)

Mentions and replies (`post.mention.create`, `post.reply.create`) are private events: X takes
their subscription only in the account's own user context (here OAuth 1.0a, the credentials the
worker already holds; `openapi.json` lists `UserToken` for the operation).

Like every XClient call: reads (GET) are retried when X certainly served nothing, writes never
are; refusals are the client's typed errors. X's webhook refusals (400 with
`errors[].message = "<Reason>: ..."`) become :class:`WebhookRefused` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from worker.clients.x.client import XClient
from worker.clients.x.errors import XBadRequest, XError

MENTION_EVENT = "post.mention.create"
REPLY_EVENT = "post.reply.create"

# x-api/webhooks/quickstart.mdx "Common failure reasons" (and WebhookIdInvalid for PUT/DELETE).
WEBHOOK_REASONS = (
    "CrcValidationFailed",
    "UrlValidationFailed",
    "DuplicateUrlFailed",
    "WebhookLimitExceeded",
    "WebhookIdInvalid",
)


class WebhookRefused(XBadRequest):
    """X refused a webhook or subscription request for a named ``reason``."""

    def __init__(self, message: str, *, reason: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    valid: bool
    created_at: str | None = None


@dataclass(frozen=True)
class ActivitySubscription:
    id: str
    event_type: str
    user_id: str | None
    webhook_id: str | None
    tag: str | None = None
    created_at: str | None = None


def parse_webhook(item: Any) -> Webhook | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    return Webhook(
        id=str(item["id"]),
        url=str(item.get("url") or ""),
        valid=item.get("valid") is True,
        created_at=item.get("created_at"),
    )


def parse_subscription(item: Any) -> ActivitySubscription | None:
    """One subscription object, in either of X's documented placements: the spec's
    ``{"subscription": {...}}`` or the quickstart's bare object (``data`` or ``data[0]``)."""
    if isinstance(item, list):
        item = item[0] if item else None
    if isinstance(item, dict) and isinstance(item.get("subscription"), dict):
        item = item["subscription"]
    if not isinstance(item, dict) or not item.get("subscription_id"):
        return None
    raw_filter = item.get("filter")
    flt: dict[str, Any] = raw_filter if isinstance(raw_filter, dict) else {}
    return ActivitySubscription(
        id=str(item["subscription_id"]),
        event_type=str(item.get("event_type") or ""),
        user_id=str(flt["user_id"]) if flt.get("user_id") else None,
        webhook_id=str(item["webhook_id"]) if item.get("webhook_id") else None,
        tag=item.get("tag") if isinstance(item.get("tag"), str) else None,
        created_at=item.get("created_at"),
    )


def _refusal(exc: XBadRequest) -> XError:
    detail = exc.detail or ""
    for reason in WEBHOOK_REASONS:
        if reason in detail:
            return WebhookRefused(
                str(exc), reason=reason, endpoint=exc.endpoint, status=exc.status, detail=detail
            )
    return exc


class XActivity:
    """The XAA and webhook calls, on an :class:`XClient`'s session, auth and error mapping."""

    def __init__(self, x: XClient, *, page_size: int = 100, max_pages: int = 20) -> None:
        self._x = x
        self._page_size = page_size
        self._max_pages = max_pages

    async def _call(
        self, endpoint: str, method: str, path: str, *, auth: str, read: bool, **kwargs: Any
    ) -> dict[str, Any]:
        call = partial(self._x._session_call, endpoint, method, path, auth=auth, **kwargs)
        try:
            return await self._x._run(endpoint, call, read=read)
        except WebhookRefused:
            raise
        except XBadRequest as exc:
            raise _refusal(exc) from None

    # --- webhooks ------------------------------------------------------------------------------

    async def webhooks(self) -> list[Webhook]:
        body = await self._call("webhooks", "GET", "/2/webhooks", auth="app", read=True)
        data = body.get("data")
        found = [parse_webhook(item) for item in (data if isinstance(data, list) else [])]
        return [w for w in found if w is not None]

    async def create_webhook(self, url: str) -> Webhook:
        """Register ``url``; X answers only after its CRC against the URL passed. Not retried:
        on a timeout the webhook may exist (look with :meth:`webhooks`)."""
        body = await self._call(
            "webhooks_create", "POST", "/2/webhooks", auth="app", read=False, json={"url": url}
        )
        webhook = parse_webhook(body.get("data"))
        if webhook is None:
            raise XError("webhooks_create: X returned no webhook", endpoint="webhooks_create")
        return webhook

    async def validate_webhook(self, webhook_id: str) -> bool:
        """Ask X for a CRC now (re-enables an invalid webhook when it passes)."""
        body = await self._call(
            "webhooks_validate", "PUT", f"/2/webhooks/{webhook_id}", auth="app", read=False
        )
        data = body.get("data")
        return isinstance(data, dict) and data.get("valid") is True

    async def delete_webhook(self, webhook_id: str) -> bool:
        body = await self._call(
            "webhooks_delete", "DELETE", f"/2/webhooks/{webhook_id}", auth="app", read=False
        )
        data = body.get("data")
        return isinstance(data, dict) and data.get("deleted") is True

    # --- subscriptions -----------------------------------------------------------------------

    async def subscriptions(self) -> list[ActivitySubscription]:
        """Every subscription of the app, following ``meta.next_token``."""
        out: list[ActivitySubscription] = []
        token: str | None = None
        for _ in range(self._max_pages):
            params = {"max_results": str(self._page_size)}
            if token:
                params["pagination_token"] = token
            body = await self._call(
                "activity_subscriptions",
                "GET",
                "/2/activity/subscriptions",
                auth="app",
                read=True,
                params=params,
            )
            data = body.get("data")
            for item in data if isinstance(data, list) else []:
                sub = parse_subscription(item)
                if sub is not None:
                    out.append(sub)
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            token = meta.get("next_token") if meta else None
            if not token:
                break
        return out

    async def subscribe(
        self, event_type: str, user_id: str, *, webhook_id: str, tag: str | None = None
    ) -> ActivitySubscription:
        """Subscribe ``user_id`` (the account itself, for private events) to ``event_type``
        events, delivered to ``webhook_id``. Not retried: look before subscribing again."""
        body: dict[str, Any] = {
            "event_type": event_type,
            "filter": {"user_id": str(user_id)},
            "webhook_id": str(webhook_id),
        }
        if tag:
            body["tag"] = tag
        answer = await self._call(
            "activity_subscribe",
            "POST",
            "/2/activity/subscriptions",
            auth="user",
            read=False,
            json=body,
        )
        sub = parse_subscription(answer.get("data"))
        if sub is None:
            raise XError(
                "activity_subscribe: X returned no subscription", endpoint="activity_subscribe"
            )
        return sub

    async def unsubscribe(self, subscription_id: str) -> bool:
        body = await self._call(
            "activity_unsubscribe",
            "DELETE",
            f"/2/activity/subscriptions/{subscription_id}",
            auth="app",
            read=False,
        )
        data = body.get("data")
        return isinstance(data, dict) and data.get("deleted") is True
