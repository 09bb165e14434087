"""HTTP side of the stand-in's X Activity API and V2 webhooks (state in ``activity``).

The X middleware in ``app`` authenticates, rate-limits and logs these routes like every other
endpoint (``activity.ROUTES`` / ``activity.AUTH``); the handlers here validate bodies as
`openapi.json` describes them and answer in X's shapes:

* webhook refusals: 400 `{"errors": [{"message": "<Reason>: <details>"}], "title": "Invalid
  Request", ...}` with the reasons of `x-api/webhooks/quickstart.mdx` (the shape is the one
  X's V2 webhooks guide shows for "Failure (400 Bad Request)");
* `GET /2/webhooks`: `{"data": [...], "meta": {"result_count": n}}`, `data` empty when none;
* `POST /2/activity/subscriptions`: `{"data": {"subscription": {...}}}` (openapi.json);
* `GET /2/activity/subscriptions`: `data` omitted when there are none (as X's v2 lists do),
  `meta.total_subscriptions`, `meta.next_token` while more remain.

Control plane: `GET /_sandbox/activity`, `POST /_sandbox/activity/route` ({"public":
"https://host", "local": "http://127.0.0.1:PORT"}), `POST /_sandbox/activity/tick`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from sandbox.x_api import activity as a

ACTIVITY_KEY = web.AppKey("x_activity", a.ActivityState)

_PUBLIC_EVENT_AUTH_NOTE = (
    "Subscriptions for private events can only be created for users who have authorized your "
    "application, in that user's context."
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type="application/json")


def _refused(reason: str, detail: str) -> web.Response:
    return _json(
        {
            "errors": [{"message": f"{reason}: {detail}"}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        400,
    )


def _invalid(message: str, parameter: str | None = None, value: Any = None) -> web.Response:
    error: dict[str, Any] = {"message": message}
    if parameter is not None:
        error["parameters"] = {parameter: [str(value)]}
    return _json(
        {
            "errors": [error],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        400,
    )


def _activity(request: web.Request) -> a.ActivityState:
    return request.app[ACTIVITY_KEY]


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _invalid("Request body is not valid JSON.")
    if not isinstance(body, dict):
        return _invalid("Request body must be a JSON object.")
    return body


def _user_context(request: web.Request) -> bool:
    # The middleware has already verified the credentials: an OAuth header is the user's.
    return request.headers.get("Authorization", "").startswith("OAuth ")


def url_problem(url: str) -> str | None:
    """Why X refuses a webhook URL (webhooks/introduction.mdx "Webhook requirements")."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL is not valid"
    if parts.scheme != "https":
        return "the URL must use https"
    if not parts.hostname or parts.username or parts.password:
        return "the URL must name a host and carry no credentials"
    if port is not None:
        return "the URL cannot include a port"
    return None


# --- webhooks --------------------------------------------------------------------------------


async def create_webhook(request: web.Request) -> web.Response:
    activity = _activity(request)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    url = body.get("url")
    if not isinstance(url, str) or not 1 <= len(url) <= 200:
        return _invalid("The `url` field must be a string of 1 to 200 characters.", "url", url)
    problem = url_problem(url)
    if problem:
        return _refused("UrlValidationFailed", problem)
    if any(w.url == url for w in activity.webhooks.values()):
        return _refused("DuplicateUrlFailed", "a webhook is already registered for this URL")
    if len(activity.webhooks) >= activity.webhook_limit:
        return _refused(
            "WebhookLimitExceeded",
            f"this application may register {activity.webhook_limit} webhook(s)",
        )
    webhook = a.Webhook(id=activity.new_id(), url=url, created_at=activity.x.now())
    result = await activity.crc_check(webhook)  # "X will immediately send a CRC request"
    if not result.passed:
        return _refused("CrcValidationFailed", result.detail)
    if any(w.url == url for w in activity.webhooks.values()):  # a concurrent registration won
        return _refused("DuplicateUrlFailed", "a webhook is already registered for this URL")
    activity.webhooks[webhook.id] = webhook
    return _json({"data": webhook.to_json()})


async def list_webhooks(request: web.Request) -> web.Response:
    hooks = [w.to_json() for w in _activity(request).webhooks.values()]
    return _json({"data": hooks, "meta": {"result_count": len(hooks)}})


def _path_id(request: web.Request, name: str) -> str | web.Response:
    """A path id as openapi.json requires it (`^[0-9]{1,19}$`), or X's 400."""
    value = request.match_info[name]
    if not a.ID.match(value):
        return _invalid(f"The `{name}` path parameter value [{value}] is not valid", name, value)
    return value


def _webhook(request: web.Request) -> a.Webhook | web.Response:
    webhook_id = _path_id(request, "webhook_id")
    if isinstance(webhook_id, web.Response):
        return webhook_id
    webhook = _activity(request).webhooks.get(webhook_id)
    if webhook is None:
        return _refused("WebhookIdInvalid", f"no webhook {webhook_id} for this application")
    return webhook


async def validate_webhook(request: web.Request) -> web.Response:
    webhook = _webhook(request)
    if isinstance(webhook, web.Response):
        return webhook
    result = await _activity(request).crc_check(webhook)
    if not result.passed:
        return _refused("CrcValidationFailed", result.detail)
    return _json({"data": {"valid": webhook.valid}})


async def delete_webhook(request: web.Request) -> web.Response:
    webhook = _webhook(request)
    if isinstance(webhook, web.Response):
        return webhook
    # Its subscriptions stay (see the module docs of `activity`).
    _activity(request).webhooks.pop(webhook.id, None)
    return _json({"data": {"deleted": True}})


# --- subscriptions ---------------------------------------------------------------------------


def _check_subscription(
    request: web.Request, body: dict[str, Any]
) -> tuple[str, dict[str, str], str | None, str | None] | web.Response:
    """(event_type, filter, tag, webhook_id) of a valid request, or X's refusal."""
    activity = _activity(request)
    extra = set(body) - {"event_type", "filter", "tag", "webhook_id"}
    if extra:
        name = sorted(extra)[0]
        return _invalid(f"[{name}] is not one of [event_type, filter, tag, webhook_id]", name)
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or event_type not in a.EVENT_TYPES:
        return _invalid(
            f"The `event_type` value [{event_type}] is not a supported event type",
            "event_type",
            event_type,
        )
    raw_filter = body.get("filter")
    if not isinstance(raw_filter, dict) or set(raw_filter) - {"direction", "keyword", "user_id"}:
        return _invalid("The `filter` field must be an object of direction, keyword, user_id")
    if not all(isinstance(v, str) for v in raw_filter.values()):
        return _invalid("The `filter` values must be strings", "filter", raw_filter)
    flt: dict[str, str] = dict(raw_filter)
    user_id = flt.get("user_id")
    if event_type.startswith(("post.", "like.", "follow.", "profile.", "dm.", "chat.")) and (
        user_id is None or not a.ID.match(user_id)
    ):
        return _invalid("The `filter.user_id` field is required for this event type", "filter")
    if user_id is not None and user_id not in activity.x.users:
        return _invalid(f"Could not find user with id: [{user_id}].", "filter.user_id", user_id)
    tag = body.get("tag")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 200):
        return _invalid("The `tag` field must be a string of 1 to 200 characters.", "tag", tag)
    webhook_id = body.get("webhook_id")
    if webhook_id is not None:
        if not isinstance(webhook_id, str) or not a.ID.match(webhook_id):
            return _invalid("The `webhook_id` field is not valid", "webhook_id", webhook_id)
        if webhook_id not in activity.webhooks:
            return _refused("WebhookIdInvalid", f"no webhook {webhook_id} for this application")
    private = event_type in a.PRIVATE_EVENT_TYPES or event_type.startswith(a.PRIVATE_EVENT_PREFIXES)
    if private and (not _user_context(request) or user_id != activity.x.me.id):
        return _json(
            {
                "title": "Forbidden",
                "detail": f"{event_type} is a private event. {_PUBLIC_EVENT_AUTH_NOTE}",
                "type": "about:blank",
                "status": 403,
            },
            403,
        )
    return event_type, flt, tag, webhook_id


async def create_subscription(request: web.Request) -> web.Response:
    activity = _activity(request)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    checked = _check_subscription(request, body)
    if isinstance(checked, web.Response):
        return checked
    event_type, flt, tag, webhook_id = checked
    if len(activity.subscriptions) >= activity.subscription_limit:
        # activity/introduction.mdx "Subscription limits"; X does not name this refusal.
        return _refused(
            "SubscriptionLimitExceeded",
            f"this application may hold {activity.subscription_limit} subscriptions",
        )
    sub = a.Subscription(
        id=activity.new_id(),
        event_type=event_type,
        filter=flt,
        created_at=activity.x.now(),
        webhook_id=webhook_id,
        tag=tag,
    )
    activity.subscriptions[sub.id] = sub
    return _json({"data": {"subscription": sub.to_json()}})


def _page_token(after_id: str) -> str:
    return base64.b32hexencode(f"after:{after_id}".encode()).decode().rstrip("=")


def _after(token: str) -> str | None:
    try:
        text = base64.b32hexdecode(token + "=" * (-len(token) % 8)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return text[len("after:") :] if text.startswith("after:") else None


async def list_subscriptions(request: web.Request) -> web.Response:
    activity = _activity(request)
    raw = request.query.get("max_results", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        return _invalid(
            f"The `max_results` query parameter value [{raw}] is not between 1 and 1000",
            "max_results",
            raw,
        )
    subs = sorted(activity.subscriptions.values(), key=lambda s: int(s.id))
    token = request.query.get("pagination_token")
    if token is not None:
        after = _after(token) if len(token) >= 16 else None
        if after is None:
            return _invalid(
                f"The `pagination_token` query parameter value [{token}] is not valid",
                "pagination_token",
                token,
            )
        subs = [s for s in subs if int(s.id) > int(after)]
    page, rest = subs[: int(raw)], subs[int(raw) :]
    body: dict[str, Any] = {}
    if page:
        body["data"] = [s.to_json() for s in page]
    meta: dict[str, Any] = {
        "result_count": len(page),
        "total_subscriptions": len(activity.subscriptions),
    }
    if rest and page:
        meta["next_token"] = _page_token(page[-1].id)
    body["meta"] = meta
    return _json(body)


async def delete_subscription(request: web.Request) -> web.Response:
    activity = _activity(request)
    sub_id = _path_id(request, "subscription_id")
    if isinstance(sub_id, web.Response):
        return sub_id
    if activity.subscriptions.pop(sub_id, None) is None:
        return _refused("SubscriptionIdInvalid", f"no subscription {sub_id} for this application")
    return _json(
        {"data": {"deleted": True}, "meta": {"total_subscriptions": len(activity.subscriptions)}}
    )


# --- control plane ---------------------------------------------------------------------------


async def sandbox_activity(request: web.Request) -> web.Response:
    return _json(_activity(request).snapshot())


async def sandbox_route(request: web.Request) -> web.Response:
    body = await request.json()
    _activity(request).route(str(body["public"]), str(body["local"]))
    return _json({"ok": True})


async def sandbox_tick(request: web.Request) -> web.Response:
    activity = _activity(request)
    await activity.tick()
    await activity.drain()
    return _json(activity.snapshot())


def install(app: web.Application, activity: a.ActivityState) -> None:
    """Add the routes to the stand-in's app and bind deliveries to its event loop."""
    app[ACTIVITY_KEY] = activity
    app.router.add_post("/2/webhooks", create_webhook)
    app.router.add_get("/2/webhooks", list_webhooks)
    app.router.add_put("/2/webhooks/{webhook_id}", validate_webhook)
    app.router.add_delete("/2/webhooks/{webhook_id}", delete_webhook)
    app.router.add_post("/2/activity/subscriptions", create_subscription)
    app.router.add_get("/2/activity/subscriptions", list_subscriptions)
    app.router.add_delete("/2/activity/subscriptions/{subscription_id}", delete_subscription)
    app.router.add_get("/_sandbox/activity", sandbox_activity)
    app.router.add_post("/_sandbox/activity/route", sandbox_route)
    app.router.add_post("/_sandbox/activity/tick", sandbox_tick)

    async def bind(app: web.Application) -> None:
        import asyncio

        activity.bind(asyncio.get_running_loop())

    async def close(app: web.Application) -> None:
        await activity.close()

    app.on_startup.append(bind)
    app.on_cleanup.append(close)
