"""X's published rate-limit table for the endpoints chirpbase uses, with its 24-hour windows.

Source: docs.x.com/x-api/fundamentals/rate-limits ("Rate limit tables"). Each endpoint has a
15-minute limit per user (OAuth 1.0a / 2.0 user context) and per app (bearer token), and some
also a 24-hour limit:

| endpoint                  | per app            | per user               |
|---------------------------|--------------------|------------------------|
| POST /2/tweets            | 10,000/24hrs       | 100/15min              |
| DELETE /2/tweets/:id      | -                  | 50/15min               |
| GET /2/tweets             | 3,500/15min        | 5,000/15min            |
| GET /2/users/:id/tweets   | 10,000/15min       | 900/15min              |
| GET /2/users/:id/mentions | 450/15min          | 300/15min              |
| POST /2/users/:id/likes   | -                  | 50/15min, 1,000/24hrs  |
| GET /2/users/me           | -                  | 75/15min               |
| GET /2/users              | 300/15min          | 900/15min              |
| POST /2/media/upload      | 50,000/24hrs       | 500/15min              |
| POST /2/media/metadata    | 50,000/24hrs       | 500/15min              |
| GET /2/usage/tweets       | 50/15min           | -                      |

The 15-minute window is reported in ``x-rate-limit-limit|remaining|reset`` (documented). A
24-hour window is reported in ``x-app-limit-24hour-*`` (per app) or ``x-user-limit-24hour-*``
(per user) with the same three suffixes: X sends these on endpoints with a daily limit, as
client libraries that handle them report (twitter-api-v2, xurl), though the rate-limit page
does not name them. When a 24-hour window is spent, X answers 429 even while the 15-minute
window has calls left; its ``-reset`` is the time to wait for.

The stand-in keeps one 15-minute window per endpoint (the user-context limit; the app limit
for app-only endpoints: ``XState.rate_rules``) as before, and the 24-hour windows here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sandbox.x_api.model import (
    CREATE_TWEET,
    DELETE_TWEET,
    LIKE,
    LOOKUP,
    ME,
    MEDIA_METADATA,
    MEDIA_UPLOAD,
    MENTIONS,
    USAGE,
    USER_TWEETS,
    USERS_LOOKUP,
    RateLimitRule,
    RateWindow,
)

Scope = Literal["app", "user"]
DAY = 86_400.0

#: The 15-minute limit a user-context request meets (the app's for app-only endpoints).
PUBLISHED_15_MIN: dict[str, RateLimitRule] = {
    ME: RateLimitRule(75),
    CREATE_TWEET: RateLimitRule(100),
    DELETE_TWEET: RateLimitRule(50),
    LIKE: RateLimitRule(50),
    MENTIONS: RateLimitRule(300),
    USER_TWEETS: RateLimitRule(900),
    LOOKUP: RateLimitRule(5000),
    MEDIA_UPLOAD: RateLimitRule(500),
    MEDIA_METADATA: RateLimitRule(500),
    USAGE: RateLimitRule(50),
    USERS_LOOKUP: RateLimitRule(900),
}

#: 24-hour limits: (scope of the window, limit).
PUBLISHED_24_HOUR: dict[str, tuple[Scope, int]] = {
    CREATE_TWEET: ("app", 10_000),
    LIKE: ("user", 1_000),
    MEDIA_UPLOAD: ("app", 50_000),
    MEDIA_METADATA: ("app", 50_000),
}


@dataclass(frozen=True)
class DayWindow:
    scope: Scope
    window: RateWindow

    def headers(self) -> dict[str, str]:
        prefix = f"x-{self.scope}-limit-24hour"
        return {
            f"{prefix}-limit": str(self.window.limit),
            f"{prefix}-remaining": str(max(self.window.remaining, 0)),
            f"{prefix}-reset": str(int(self.window.reset_at)),
        }


class DayLimits:
    """The 24-hour windows of the endpoints that have one (X's table, overridable)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.rules: dict[str, tuple[Scope, int]] = dict(PUBLISHED_24_HOUR)
        self._windows: dict[str, RateWindow] = {}

    def _window(self, endpoint: str) -> RateWindow | None:
        rule = self.rules.get(endpoint)
        if rule is None:
            return None
        now = self._clock()
        window = self._windows.get(endpoint)
        if window is None or now >= window.reset_at:
            window = RateWindow(rule[1], DAY, rule[1], now + DAY)
            self._windows[endpoint] = window
        return window

    def take(self, endpoint: str) -> tuple[bool, DayWindow | None]:
        """Count one request against the endpoint's 24-hour window: (allowed, the window)."""
        with self._lock:
            window = self._window(endpoint)
            if window is None:
                return True, None
            allowed = window.remaining > 0
            if allowed:
                window.remaining -= 1
            return allowed, DayWindow(self.rules[endpoint][0], RateWindow(**vars(window)))

    def peek(self, endpoint: str) -> DayWindow | None:
        with self._lock:
            window = self._window(endpoint)
            if window is None:
                return None
            return DayWindow(self.rules[endpoint][0], RateWindow(**vars(window)))

    def set(
        self,
        endpoint: str,
        *,
        scope: Scope | None = None,
        limit: int | None = None,
        remaining: int | None = None,
        reset_in: float | None = None,
    ) -> DayWindow:
        """Change an endpoint's 24-hour rule and/or its current window (remaining=0 spends it)."""
        with self._lock:
            old = self.rules.get(endpoint, ("user", 1_000))
            self.rules[endpoint] = (scope or old[0], limit if limit is not None else old[1])
            window = self._window(endpoint)
            assert window is not None
            if limit is not None:
                window.limit = window.remaining = limit
            if remaining is not None:
                window.remaining = remaining
            if reset_in is not None:
                window.reset_at = self._clock() + reset_in
            return DayWindow(self.rules[endpoint][0], RateWindow(**vars(window)))


class RateLimiting:
    """The 15-minute windows of ``XState`` (one per endpoint, ``rate_rules``): counted by the
    middleware, changed by tests (``set_rate_limit``, ``exhaust_rate_limit``)."""

    _lock: threading.RLock
    rate_rules: dict[str, RateLimitRule]
    _windows: dict[str, RateWindow]

    def now(self) -> float:
        raise NotImplementedError  # XState's clock

    def set_rate_limit(
        self,
        endpoint: str,
        *,
        limit: int | None = None,
        window_secs: float | None = None,
        remaining: int | None = None,
        reset_in: float | None = None,
    ) -> RateWindow:
        """Change an endpoint's rule and/or its current window (e.g. remaining=0)."""
        with self._lock:
            rule = self.rate_rules.get(endpoint, RateLimitRule(900))
            rule = RateLimitRule(
                limit if limit is not None else rule.limit,
                window_secs if window_secs is not None else rule.window_secs,
            )
            self.rate_rules[endpoint] = rule
            window = self._window(endpoint)
            window.limit = rule.limit
            window.window_secs = rule.window_secs
            if limit is not None or window_secs is not None:
                window.remaining = rule.limit
                window.reset_at = self.now() + rule.window_secs
            if remaining is not None:
                window.remaining = remaining
            if reset_in is not None:
                window.reset_at = self.now() + reset_in
            return RateWindow(window.limit, window.window_secs, window.remaining, window.reset_at)

    def exhaust_rate_limit(self, endpoint: str, *, reset_in: float = 60.0) -> RateWindow:
        """Force remaining=0 until ``reset_in`` seconds from now."""
        return self.set_rate_limit(endpoint, remaining=0, reset_in=reset_in)

    def _window(self, endpoint: str) -> RateWindow:
        rule = self.rate_rules.get(endpoint)
        if rule is None:
            rule = RateLimitRule(900)
            self.rate_rules[endpoint] = rule
        window = self._windows.get(endpoint)
        now = self.now()
        if window is None or now >= window.reset_at:
            window = RateWindow(rule.limit, rule.window_secs, rule.limit, now + rule.window_secs)
            self._windows[endpoint] = window
        return window

    def take_rate_limit(self, endpoint: str) -> tuple[bool, RateWindow]:
        """Count one request; (allowed, window after the request)."""
        with self._lock:
            window = self._window(endpoint)
            if window.remaining <= 0:
                return False, RateWindow(**vars(window))
            window.remaining -= 1
            return True, RateWindow(**vars(window))

    def peek_rate_limit(self, endpoint: str) -> RateWindow:
        with self._lock:
            return RateWindow(**vars(self._window(endpoint)))
