"""The X operation a call is billed as, and what chirpbase expects it to cost.

Prices come from ``configs.pricing.x`` (:class:`worker.config.models.XPrices`); the page they
follow is docs.x.com/x-api/getting-started/pricing:

* ``POST /2/tweets``: $0.015 a post, $0.20 when its text contains a URL, $0.010 for a reply to
  a post that summoned the account. A reply with a URL is priced as a post with a URL (the page
  does not say which wins; the higher price keeps the budget on the safe side).
* reads are billed per resource returned, once per resource per UTC day: a post $0.005, a user
  $0.010, and $0.001 ("owned reads") from ``GET /2/users/{id}/tweets`` and ``/mentions`` when
  ``{id}`` is the authenticated account.

These are estimates made before a call (budget reservations, the price shown when a post is
scheduled). What a call cost is computed by SQL (``record_x_usage``) from the same row.
"""

from __future__ import annotations

from typing import Literal

from worker.config.models import XPrices
from worker.content.tweet_text import extract_url_spans

PostOperation = Literal["post", "post_with_url", "reply_summoned"]
ReadSource = Literal["owned_timeline", "lookup"]


def has_url(text: str) -> bool:
    """True when X would link something in `text` (twitter-text's URL extraction)."""
    return bool(extract_url_spans(text))


def post_operation(text: str, *, summoned_reply: bool = False) -> PostOperation:
    """How X bills creating a post with this text."""
    if has_url(text):
        return "post_with_url"
    return "reply_summoned" if summoned_reply else "post"


def post_price(prices: XPrices, text: str, *, summoned_reply: bool = False) -> float:
    return float(getattr(prices, post_operation(text, summoned_reply=summoned_reply)))


def stats_read_cost(
    prices: XPrices, *, wanted: int, timeline_posts: int
) -> dict[ReadSource, float]:
    """What reading the metrics of `wanted` own posts costs each way, before the once-a-day
    rule: a lookup bills each wanted post at the post-read price; the owned timeline bills every
    post on it back to the oldest wanted one (`timeline_posts`) at the owned-read price."""
    return {
        "lookup": wanted * prices.post_read,
        "owned_timeline": timeline_posts * prices.owned_read,
    }


def cheapest_stats_read(
    prices: XPrices, *, wanted: int, timeline_posts: int
) -> tuple[ReadSource, dict[ReadSource, float]]:
    costs = stats_read_cost(prices, wanted=wanted, timeline_posts=timeline_posts)
    source: ReadSource = "owned_timeline" if costs["owned_timeline"] < costs["lookup"] else "lookup"
    return source, costs
