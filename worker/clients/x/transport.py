"""How requests reach X: tweepy's session, re-pointed at X_API_BASE_URL, with timeouts and
per-endpoint names for rate limits, usage rows and errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

PUBLIC_BASE_URL = "https://api.twitter.com"  # what tweepy calls (and signs)


# Endpoint names (stable keys for rate limits, usage rows and errors).
_ENDPOINTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/2/users/me$"), "me"),
    ("POST", re.compile(r"^/2/tweets$"), "tweets"),
    ("DELETE", re.compile(r"^/2/tweets/[0-9]+$"), "tweets_delete"),
    ("GET", re.compile(r"^/2/tweets$"), "tweets_lookup"),
    ("POST", re.compile(r"^/2/users/[0-9]+/likes$"), "likes"),
    ("GET", re.compile(r"^/2/users/[0-9]+/mentions$"), "mentions"),
    ("GET", re.compile(r"^/2/users/[0-9]+/tweets$"), "users_tweets"),
    ("POST", re.compile(r"^/2/media/upload$"), "media_upload"),
    ("POST", re.compile(r"^/2/media/metadata$"), "media_metadata"),
    ("GET", re.compile(r"^/2/usage/tweets$"), "usage"),
)


# X's own spelling ("METHOD /path/:id") of the same endpoints, accepted by rate_limit().
ENDPOINT_ALIASES = {
    "GET /2/users/me": "me",
    "POST /2/tweets": "tweets",
    "DELETE /2/tweets/:id": "tweets_delete",
    "GET /2/tweets": "tweets_lookup",
    "POST /2/users/:id/likes": "likes",
    "GET /2/users/:id/mentions": "mentions",
    "GET /2/users/:id/tweets": "users_tweets",
    "POST /2/media/upload": "media_upload",
    "POST /2/media/metadata": "media_metadata",
    "GET /2/usage/tweets": "usage",
}


def endpoint_name(method: str, path: str) -> str:
    """The stable name of an X endpoint ("mentions", "tweets", ...) for a request."""
    for verb, pattern, name in _ENDPOINTS:
        if verb == method.upper() and pattern.match(path):
            return name
    parts = path.split("/")
    template = "/".join(":id" if i > 2 and part.isdigit() else part for i, part in enumerate(parts))
    return f"{method.upper()} {template}"


class RewritingAdapter(HTTPAdapter):
    """Send ``https://api.twitter.com/...`` to ``base_url`` instead, with default timeouts,
    and report each response's rate-limit headers. Never retries (``max_retries=0``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float],
        on_response: Callable[[str, str, requests.Response], None] | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.on_response = on_response

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        rewritten = self.base_url != PUBLIC_BASE_URL and url.startswith(PUBLIC_BASE_URL + "/")
        if rewritten:
            request.url = self.base_url + url[len(PUBLIC_BASE_URL) :]
            kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        if self.on_response is not None:
            path = urlsplit(url).path
            self.on_response(request.method or "GET", path, response)
        return response


def int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
