"""What the app's access tier lets it do on the stand-in, refused the way X refuses it.

* Likes and quote posts: removed from every self-serve tier (pay-per-use, Basic, Pro) on
  2026-04-20 (docs.x.com changelog, entry of 2026-04-16: "Following, Likes, and Quote-Posts via
  the API have been removed from all self-serve tiers"); Enterprise keeps them. X refuses an
  endpoint outside the app's access with 403 and its ``client-forbidden`` problem (listed in
  x-api/fundamentals/response-codes-and-errors: "App not enrolled or lacks required access"),
  reason ``client-not-enrolled``, in the shape client libraries have long reported for it.
* Summoned replies: since 2026-02-23 (changelog, "Addressing LLM-generated spam") a reply by
  ``POST /2/tweets`` on a self-serve tier is allowed only when the original post's author
  summoned the replier: mentioned the account or quoted one of its posts. Otherwise 403 with
  X's detail "Reply to this conversation is not allowed because you have not been mentioned or
  otherwise engaged by the author of the post you are replying to." (the text client libraries
  report; ``type`` about:blank). A reply to one's own post (a thread) is not restricted.
"""

from __future__ import annotations

from typing import Any, Literal

Tier = Literal["pay_per_use", "basic", "pro", "enterprise"]
TIERS: tuple[Tier, ...] = ("pay_per_use", "basic", "pro", "enterprise")

NOT_SUMMONED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
    "engaged by the author of the post you are replying to."
)


def self_serve(tier: str) -> bool:
    return tier != "enterprise"


def allows(tier: str, capability: Literal["likes", "quotes", "unsummoned_replies"]) -> bool:
    """Likes, quote posts and unsummoned replies are Enterprise-only (see the module docstring)."""
    del capability  # all three follow the same rule today
    return not self_serve(tier)


def client_forbidden(client_id: str, problem_base: str) -> dict[str, Any]:
    """X's 403 body for an endpoint the app's access does not include."""
    return {
        "client_id": client_id,
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project. You can "
        "create a project via the developer portal.",
        "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": f"{problem_base}/client-forbidden",
    }


def not_summoned() -> dict[str, Any]:
    """X's 403 body for a reply (or quote) to a post whose author did not summon the account."""
    return {"title": "Forbidden", "status": 403, "detail": NOT_SUMMONED, "type": "about:blank"}


def summoned(
    parent_author: str,
    parent_mentions: list[str],
    parent_quotes: list[str],
    *,
    me: str,
    my_posts: set[str],
) -> bool:
    """Did the post being replied to summon the account ``me``?"""
    return parent_author == me or me in parent_mentions or any(q in my_posts for q in parent_quotes)
