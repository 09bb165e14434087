"""Rate-limit headers, retry-after parsing and the retry policy for OpenAI calls."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset_duration(value: str | None) -> float | None:
    """OpenAI's ``x-ratelimit-reset-*`` format (``20ms``, ``1s``, ``6m0s``, ``1h2m3.5s``) in
    seconds, or None when absent or unparseable."""
    if not value:
        return None
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit] * number
        pos = match.end()
    if pos != len(text) or pos == 0:
        try:
            return max(0.0, float(text))
        except ValueError:
            return None
    return total


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RateLimitInfo:
    """The ``x-ratelimit-*`` headers of one response."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        info = cls(
            limit_requests=_int_header(headers, "x-ratelimit-limit-requests"),
            remaining_requests=_int_header(headers, "x-ratelimit-remaining-requests"),
            reset_requests_s=parse_reset_duration(headers.get("x-ratelimit-reset-requests")),
            limit_tokens=_int_header(headers, "x-ratelimit-limit-tokens"),
            remaining_tokens=_int_header(headers, "x-ratelimit-remaining-tokens"),
            reset_tokens_s=parse_reset_duration(headers.get("x-ratelimit-reset-tokens")),
        )
        return None if info == cls() else info

    def exhausted_wait(self) -> float | None:
        """Seconds until an exhausted window resets (None when nothing is exhausted)."""
        waits = []
        if self.remaining_requests == 0 and self.reset_requests_s is not None:
            waits.append(self.reset_requests_s)
        if self.remaining_tokens == 0 and self.reset_tokens_s is not None:
            waits.append(self.reset_tokens_s)
        return max(waits) if waits else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """``retry-after-ms`` (preferred, as the SDK does), else ``retry-after`` in seconds or as an
    HTTP date; None when absent or unusable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter (seconds). Tests shrink these."""

    max_attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    jitter: float = 0.5
    # Honour a server ``retry-after`` up to this long; beyond it, give up and let the queue
    # reschedule the job (the error's ``retry_after`` says when).
    max_retry_after: float = 60.0
    request_timeout: float = 60.0
    image_timeout: float = 180.0
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


Sleep = Callable[[float], Awaitable[None]]
