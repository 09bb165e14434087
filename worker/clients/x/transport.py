"""How requests reach X: tweepy's session, sent to X_API_BASE_URL and signed for it, with
timeouts and per-endpoint names for rate limits, usage rows and errors.

tweepy writes every URL as ``https://api.twitter.com/...``. :class:`XSession` (tweepy's
``Client.session``) moves such a URL to ``X_API_BASE_URL`` *before* requests prepares the
request, so the OAuth 1.0a signature, computed while preparing, covers the URL actually
requested (RFC 5849 section 3.4.1.2: the base string holds the scheme, host and path of the
request). X's documented host is ``https://api.x.com``; a request signed for one host and sent
to another is refused with 401.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

TWEEPY_BASE_URL = "https://api.twitter.com"  # what tweepy writes in every URL
PUBLIC_BASE_URL = TWEEPY_BASE_URL  # the default X_API_BASE_URL (tweepy's host still answers)
DOCUMENTED_BASE_URL = "https://api.x.com"  # openapi.json `servers`


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
    ("GET", re.compile(r"^/2/users$"), "users_lookup"),
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
    "GET /2/users": "users_lookup",
}


def endpoint_name(method: str, path: str) -> str:
    """The stable name of an X endpoint ("mentions", "tweets", ...) for a request."""
    for verb, pattern, name in _ENDPOINTS:
        if verb == method.upper() and pattern.match(path):
            return name
    parts = path.split("/")
    template = "/".join(":id" if i > 2 and part.isdigit() else part for i, part in enumerate(parts))
    return f"{method.upper()} {template}"


class XSession(requests.Session):
    """A requests session that sends tweepy's ``https://api.twitter.com`` URLs to ``base_url``.

    The URL is moved in :meth:`prepare_request`, before auth is applied, so the auth tweepy
    passes (OAuth 1.0a) signs the URL that is sent. Set it as tweepy's ``Client.session``.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def target(self, url: str) -> str:
        """Where a URL written for tweepy's host is actually sent."""
        if self.base_url != TWEEPY_BASE_URL and url.startswith(TWEEPY_BASE_URL + "/"):
            return self.base_url + url[len(TWEEPY_BASE_URL) :]
        return url

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # Every request is prepared here (Session.request too), and auth is applied while
        # preparing: moving the URL first is what makes the signature cover it.
        if isinstance(request.url, str):
            request.url = self.target(request.url)
        return super().prepare_request(request)

    def api_path(self, url: str) -> str:
        """The X API path of a URL sent through this session (``/2/...``)."""
        path = urlsplit(url).path
        prefix = urlsplit(self.base_url).path.rstrip("/")
        return path[len(prefix) :] if prefix and path.startswith(prefix) else path


class XAdapter(HTTPAdapter):
    """Default timeouts, and every response reported (for its rate-limit headers). Never
    retries (``max_retries=0``): retrying is the client's decision, per call."""

    def __init__(
        self,
        session: XSession,
        *,
        timeout: float | tuple[float, float],
        on_response: Callable[[str, str, requests.Response], None] | None = None,
        pool_maxsize: int = 10,
    ) -> None:
        super().__init__(max_retries=0, pool_maxsize=pool_maxsize)
        self.session = session
        self.timeout = timeout
        self.on_response = on_response

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        response = super().send(request, **kwargs)
        if self.on_response is not None:
            path = self.session.api_path(request.url or "")
            self.on_response(request.method or "GET", path, response)
        return response


def x_session(
    base_url: str,
    *,
    timeout: float | tuple[float, float],
    on_response: Callable[[str, str, requests.Response], None] | None = None,
    pool_maxsize: int = 10,
) -> XSession:
    """An :class:`XSession` for ``base_url`` with an :class:`XAdapter` on it."""
    session = XSession(base_url)
    adapter = XAdapter(session, timeout=timeout, on_response=on_response, pool_maxsize=pool_maxsize)
    session.mount(session.base_url + "/", adapter)
    return session


def int_header(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
