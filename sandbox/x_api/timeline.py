"""Timelines as X serves them: eventually consistent, paged irregularly, bounded in time.

- **Lag.** A post appears on its author's timeline (``GET /2/users/:id/tweets``) only
  ``XState.timeline_lag_s`` after it was created; until then a client that lost the answer to
  its ``POST /2/tweets`` cannot find it there. X documents no figure; clients report new posts
  missing from timelines for a while (linvi/tweetinvi#455; twitter/the-algorithm#1762 calls it
  "eventual consistency"). A lookup by id (``GET /2/tweets?ids=``) finds the post at once.
- **Irregular pages.** "If you get fewer results than max_results, more may still exist
  (continue until no next_token)" (xdevplatform/docs ``x-api/fundamentals/pagination.mdx``,
  Notes); timelines "may receive a next_token with result_count: 0"
  (``x-api/posts/timelines/integrate.mdx``, Edge cases). A share of pages
  (``XState.short_page_rate``, seeded) is cut short, possibly to nothing, and the last page may
  be followed by an empty one: only a missing ``next_token`` ends a timeline.
- **start_time / end_time** (``x-api/posts/timelines/integrate.mdx``, "Time-based filtering";
  openapi.json ``/2/users/{id}/tweets``: date-time, "Must be on or after 2010-11-06"): the
  oldest and newest post timestamps served, second granularity, inclusive.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime

from sandbox.x_api.model import Tweet
from sandbox.x_api.state import XState

EARLIEST = datetime(2010, 11, 6, tzinfo=UTC)


def visible(state: XState, tweets: Iterable[Tweet]) -> list[Tweet]:
    """The posts a timeline shows now (the lag has passed for them)."""
    now = state.now()
    return [tweet for tweet in tweets if tweet.visible_at <= now]


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp as X accepts it (``2026-11-30T12:00:00Z``, optional fraction);
    None when it is not one or is before 2010-11-06."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment if moment >= EARLIEST else None


def in_time_range(tweet: Tweet, start: datetime | None, end: datetime | None) -> bool:
    created = tweet.created_at.replace(microsecond=0)  # second granularity
    return (start is None or created >= start) and (end is None or created <= end)


def cut_page(
    tweets: list[Tweet], limit: int, rng: random.Random, short_rate: float
) -> tuple[list[Tweet], int | None]:
    """One page from ``tweets`` (newest first, from the cursor on).

    Returns the page and the exclusive upper bound (a post id) the next page starts below, or
    None when this is the last page. A short page still carries a bound when posts remain; an
    empty one names the first remaining post's id + 1, so the next page starts there.
    """
    take = min(limit, len(tweets))
    if short_rate > 0 and rng.random() < short_rate:
        # A quarter of the short pages are empty: the hardest case for a client.
        short = 0 if rng.random() < 0.25 else rng.randint(1, max(limit - 1, 1))
        take = min(take, short)
    page = tweets[:take]
    rest = tweets[take:]
    if rest:
        return page, int(page[-1].id) if page else int(rest[0].id) + 1
    if page and short_rate > 0 and rng.random() < short_rate / 2:
        return page, int(page[-1].id)  # a trailing empty page follows
    return page, None
