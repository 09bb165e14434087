"""X access tiers and the capabilities chirpbase uses (names; the rules are SQL).

The tier is ``configs.quotas.plan``. Which tier may do what lives in the ``x_capabilities``
table (supabase/migrations/20261201002000_x_access_tiers.sql), with the date X took a
capability from self-serve tiers and the page that says so:

* likes and quote posts: Enterprise only since 2026-04-20 (docs.x.com changelog, 2026-04-16);
* replies to a post that did not summon the account (mention it or quote one of its posts):
  Enterprise only since 2026-02-23 (changelog, "Addressing LLM-generated spam").

X's developer guidelines (docs.x.com/developer-guidelines) forbid automated liking by keyword,
hashtag, user or schedule on every tier; chirpbase likes only replies and mentions of the
account (``engagement``), and only where X still offers likes.
"""

from __future__ import annotations

from typing import Literal, get_args

from worker.config.models import AccessTier

Capability = Literal[
    "posts",
    "media",
    "reads",
    "summoned_replies",
    "unsummoned_replies",
    "likes",
    "quotes",
]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
TIERS: tuple[AccessTier, ...] = get_args(AccessTier)
SELF_SERVE: frozenset[AccessTier] = frozenset({"pay_per_use", "basic", "pro", "free"})


def is_self_serve(tier: str) -> bool:
    """Pay-per-use and the legacy Basic/Pro (and Free) subscriptions: everything but Enterprise."""
    return tier in SELF_SERVE
