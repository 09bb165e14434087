"""X's refusals as a typed hierarchy, and the mapping from HTTP answers and network failures.

Messages carry the endpoint, status and X's title/detail, never credentials.

X names its problems with a ``type`` URI, seen under both hosts
(``https://api.twitter.com/2/problems/usage-capped`` in live answers, ``https://api.x.com/...``
in openapi.json): only the path's last segment is compared (:func:`problem_type`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from worker.clients.x.transport import int_header

USAGE_CAPPED = "usage-capped"
CLIENT_FORBIDDEN = "client-forbidden"
# Private metrics refused for a post: the spec's name before and since v2.167.
FIELD_REFUSED = frozenset({"not-authorized-for-field", "field-unauthorized"})
RESOURCE_NOT_FOUND = "resource-not-found"

_DUPLICATE_MARKERS = ("duplicate content",)
# X's words when a self-serve reply or quote targets a post whose author did not summon the
# account (changelog 2026-02-23; the detail text as client libraries report it).
_NOT_SUMMONED_MARKERS = (
    "reply to this conversation is not allowed",
    "quoting this post is not allowed",
    "not been mentioned or otherwise engaged",
)
# Rate-limit windows X reports: 15-minute (documented) and 24-hour ones (sent on endpoints with
# a daily limit, such as POST /2/tweets per app and likes per user; reported by client
# libraries, undocumented).
_WINDOWS = ("x-rate-limit", "x-app-limit-24hour", "x-user-limit-24hour")


def problem_type(value: Any) -> str:
    """The last path segment of an X problem ``type`` URI under either host ("usage-capped")."""
    if isinstance(value, dict):
        value = value.get("type")
    if not isinstance(value, str) or "/problems/" not in value:
        return ""
    return value.rstrip("/").rsplit("/", 1)[-1]


class XError(Exception):
    """Base of the X client's errors. ``outcome_unknown``: the request may have taken effect."""

    outcome_unknown = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.detail = detail


class XRateLimited(XError):
    """429 with (or without) reset headers: wait until ``reset_at`` (or a while).

    ``reset_at`` is the latest reset among the windows X reports exhausted: a spent 24-hour
    window (``x-app-limit-24hour-*``, ``x-user-limit-24hour-*``) means waiting for its reset,
    not the 15-minute one (``daily`` is then True)."""

    def __init__(
        self, message: str, *, reset_at: datetime | None = None, daily: bool = False, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.reset_at = reset_at
        self.daily = daily


class XUsageCapped(XError):
    """429 ``usage-capped``: the project's monthly cap is spent (rate headers may look fine)."""


class XCreditsExhausted(XError):
    """402: the account is out of credits, or its spending limit for the billing cycle is
    reached (docs.x.com/x-api/getting-started/pricing: "API requests will be blocked until you
    add credits" / "until the next billing cycle"). X documents neither the status nor a body;
    client libraries report 402, so the status alone decides. Nothing was served or billed."""


class XDuplicate(XError):
    """403 duplicate content: X already has this exact tweet, i.e. it was posted."""


class XNotSent(XError):
    """A write chirpbase did not send: the worker is shutting down and the call could not end
    before its grace period does. X certainly did nothing."""


class XServerError(XError):
    """5xx from X. For a write, the effect is unknown."""


class XNetworkError(XError):
    """No usable answer (connection refused, reset, ...). ``outcome_unknown`` unless the
    connection was never made."""

    outcome_unknown = True

    def __init__(self, message: str, *, outcome_unknown: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.outcome_unknown = outcome_unknown


def not_served(exc: BaseException) -> bool:
    """True for failures where X served nothing: worth retrying a read at once."""
    if isinstance(exc, XServerError):
        return True
    return isinstance(exc, XNetworkError) and not exc.outcome_unknown


class XTimeout(XNetworkError):
    """No answer within the timeout: the request may or may not have taken effect."""


class XAuthError(XError):
    """401 (credentials refused), or 403 refusals about permissions."""


class XForbidden(XAuthError):
    """403 other than duplicate content (not permitted, unsupported authentication, ...)."""


class XCapabilityRefused(XForbidden):
    """403 ``client-forbidden``: the app's access does not include this endpoint (X answers it,
    reason ``client-not-enrolled``, for likes and quote posts on self-serve tiers since
    2026-04-20, and for an app outside a project). ``reason`` is X's."""

    def __init__(self, message: str, *, reason: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason


class XReplyNotAllowed(XForbidden):
    """403: a reply or quote to a post whose author did not summon the account (self-serve
    tiers since 2026-02-23)."""


class XBadRequest(XError):
    """400 (and other 4xx): X refused the request as malformed or invalid; do not retry."""


class XNotFound(XBadRequest):
    """404, or a not-found error on the requested resource."""


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _describe(body: dict[str, Any]) -> str:
    parts = [str(body[k]) for k in ("title", "detail", "reason") if body.get(k)]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail")
            if message:
                parts.append(str(message))
    return ": ".join(dict.fromkeys(parts))[:500]


def error_from_response(endpoint: str, response: requests.Response) -> XError:
    """The typed error for a non-2xx answer (secrets never appear: only X's own words)."""
    status = response.status_code
    body = _problem(response)
    described = _describe(body)
    message = f"{endpoint}: HTTP {status}" + (f" {described}" if described else "")
    common: dict[str, Any] = {"endpoint": endpoint, "status": status, "detail": described or None}
    if status == 429:
        if problem_type(body) == USAGE_CAPPED or body.get("title") == "UsageCapExceeded":
            return XUsageCapped(message, **common)
        reset, daily = _rate_limit_reset(response)
        return XRateLimited(
            message,
            reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
            daily=daily,
            **common,
        )
    if status == 402:
        return XCreditsExhausted(message, **common)
    if status >= 500:
        error = XServerError(message, **common)
        error.outcome_unknown = response.request is not None and response.request.method != "GET"
        return error
    if status == 401:
        return XAuthError(message, **common)
    if status == 403:
        codes = {e.get("code") for e in body.get("errors") or [] if isinstance(e, dict)}
        lowered = described.lower()
        if 187 in codes or any(marker in lowered for marker in _DUPLICATE_MARKERS):
            return XDuplicate(message, **common)
        if any(marker in lowered for marker in _NOT_SUMMONED_MARKERS):
            return XReplyNotAllowed(message, **common)
        if problem_type(body) == CLIENT_FORBIDDEN:
            reason = body.get("reason")
            return XCapabilityRefused(message, reason=str(reason) if reason else None, **common)
        return XForbidden(message, **common)
    if status == 404:
        return XNotFound(message, **common)
    return XBadRequest(message, **common)


def _rate_limit_reset(response: requests.Response) -> tuple[int | None, bool]:
    """(epoch reset to wait for, whether a 24-hour window is the one spent).

    The latest reset among the windows reported with nothing remaining wins: waiting for the
    15-minute reset while the 24-hour window is spent would only meet another 429. Without any
    window at zero, the 15-minute reset (X's documented header) is used."""
    spent: list[tuple[int, bool]] = []
    for prefix in _WINDOWS:
        reset = int_header(response, f"{prefix}-reset")
        remaining = int_header(response, f"{prefix}-remaining")
        if reset is not None and remaining is not None and remaining <= 0:
            spent.append((reset, prefix != "x-rate-limit"))
    if spent:
        return max(spent)
    return int_header(response, "x-rate-limit-reset"), False


def error_from_errors(endpoint: str, errors: list[dict[str, Any]]) -> XError:
    described = _describe({"errors": errors})
    kinds = {problem_type(e) for e in errors if isinstance(e, dict)}
    if RESOURCE_NOT_FOUND in kinds:
        return XNotFound(f"{endpoint}: {described}", endpoint=endpoint, detail=described)
    return XBadRequest(f"{endpoint}: {described}", endpoint=endpoint, detail=described)


def error_from_network(endpoint: str, exc: requests.exceptions.RequestException) -> XError:
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return XTimeout(f"{endpoint}: connect timeout", endpoint=endpoint, outcome_unknown=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return XTimeout(f"{endpoint}: no answer within the timeout", endpoint=endpoint)
    never_sent = isinstance(exc, requests.exceptions.ConnectionError) and _never_connected(exc)
    return XNetworkError(
        f"{endpoint}: {name}" + (" (could not connect)" if never_sent else " (connection lost)"),
        endpoint=endpoint,
        outcome_unknown=not never_sent,
    )


def _never_connected(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        nested = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = reason if isinstance(reason, BaseException) else nested or current.__cause__
    return False
