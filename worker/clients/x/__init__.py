"""chirpbase's X API v2 client: tweepy's ``Client`` plus the few calls tweepy lacks.

The calls are in ``client``, the errors in ``errors``, the shapes of X's answers in ``shapes``,
the way requests reach X in ``transport``; the X Activity API (webhooks, subscriptions) in
``activity``, on the same session and errors.

* OAuth 1.0a user context (``X_API_KEY``, ``X_API_SECRET``, ``X_ACCESS_TOKEN``,
  ``X_ACCESS_TOKEN_SECRET``) for everything the account does; the app bearer token
  (``X_BEARER_TOKEN``) for ``GET /2/usage/tweets``, which only accepts app-only auth.
* tweepy hardcodes ``https://api.twitter.com``; tweepy's session is an ``XSession`` that sends
  those URLs to ``X_API_BASE_URL`` (``https://api.x.com``, the sandbox) before the request is
  prepared, so the OAuth 1.0a signature covers the URL actually requested. Its adapter applies
  the timeouts tweepy does not set and records every response's ``x-rate-limit-*`` and
  24-hour (``x-app-limit-24hour-*``, ``x-user-limit-24hour-*``) headers per endpoint.
* ``POST /2/tweets`` (for ``made_with_ai``), ``POST /2/media/upload`` and
  ``POST /2/media/metadata`` (absent from tweepy 4.17) are thin calls on the same session with
  the OAuth1 auth tweepy builds.
* Blocking calls run in a small thread pool; every method is ``async``.
* Errors become the typed hierarchy below. Reads (GET) are retried on 5xx, timeouts and
  network errors; writes never are (an unknown outcome is the caller's to reconcile).
* A write that has started is never abandoned: cancelling the caller waits for the call to
  finish (or time out) in its thread, and its result is returned. Once the worker is stopping
  (``refuse_writes_after``), a write that could not end before the deadline is not started
  (``XNotSent``).
  Messages carry the endpoint, status and X's title/detail, never credentials.
"""

from worker.clients.x.client import XClient
from worker.clients.x.errors import (
    XAuthError,
    XBadRequest,
    XCapabilityRefused,
    XCreditsExhausted,
    XDuplicate,
    XError,
    XForbidden,
    XNetworkError,
    XNotFound,
    XNotSent,
    XRateLimited,
    XReplyNotAllowed,
    XServerError,
    XTimeout,
    XUsageCapped,
    problem_type,
)
from worker.clients.x.shapes import (
    LookupResult,
    MentionsPage,
    OwnTimeline,
    RateLimit,
    TimelinePage,
    TweetMetrics,
    UrlEntity,
    XTweet,
    XUsage,
    XUser,
    parse_tweets,
)
from worker.clients.x.transport import (
    DOCUMENTED_BASE_URL,
    PUBLIC_BASE_URL,
    TWEEPY_BASE_URL,
    XSession,
    endpoint_name,
    x_session,
)

__all__ = [
    "DOCUMENTED_BASE_URL",
    "PUBLIC_BASE_URL",
    "TWEEPY_BASE_URL",
    "LookupResult",
    "MentionsPage",
    "OwnTimeline",
    "RateLimit",
    "TimelinePage",
    "TweetMetrics",
    "UrlEntity",
    "XAuthError",
    "XBadRequest",
    "XCapabilityRefused",
    "XClient",
    "XCreditsExhausted",
    "XDuplicate",
    "XError",
    "XForbidden",
    "XNetworkError",
    "XNotFound",
    "XNotSent",
    "XRateLimited",
    "XReplyNotAllowed",
    "XServerError",
    "XSession",
    "XTimeout",
    "XTweet",
    "XUsage",
    "XUsageCapped",
    "XUser",
    "endpoint_name",
    "parse_tweets",
    "problem_type",
    "x_session",
]
