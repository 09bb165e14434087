"""X's refusals as a typed hierarchy, and the mapping from HTTP answers and network failures.

Messages carry the endpoint, status and X's title/detail, never credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from worker.clients.x.transport import int_header

USAGE_CAPPED_TYPE = "https://api.twitter.com/2/problems/usage-capped"


_DUPLICATE_MARKERS = ("duplicate content",)


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
    """429 with (or without) ``x-rate-limit-reset``: wait until ``reset_at`` (or a while)."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reset_at = reset_at


class XUsageCapped(XError):
    """429 ``usage-capped``: the project's monthly cap is spent (rate headers may look fine)."""


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
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
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
        if body.get("type") == USAGE_CAPPED_TYPE or body.get("title") == "UsageCapExceeded":
            return XUsageCapped(message, **common)
        reset = int_header(response, "x-rate-limit-reset")
        return XRateLimited(
            message,
            reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
            **common,
        )
    if status >= 500:
        error = XServerError(message, **common)
        error.outcome_unknown = response.request is not None and response.request.method != "GET"
        return error
    if status == 401:
        return XAuthError(message, **common)
    if status == 403:
        codes = {e.get("code") for e in body.get("errors") or [] if isinstance(e, dict)}
        if 187 in codes or any(marker in described.lower() for marker in _DUPLICATE_MARKERS):
            return XDuplicate(message, **common)
        return XForbidden(message, **common)
    if status == 404:
        return XNotFound(message, **common)
    return XBadRequest(message, **common)


def error_from_errors(endpoint: str, errors: list[dict[str, Any]]) -> XError:
    described = _describe({"errors": errors})
    kinds = {str(e.get("type", "")) for e in errors if isinstance(e, dict)}
    if any(kind.endswith("/resource-not-found") for kind in kinds):
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
