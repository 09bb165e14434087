"""Protocol-faithful stand-in for the X API v2 endpoints chirpbase uses.

``create_app(state)`` gives the aiohttp application, :class:`XState` the world tests drive
(users, mentions, metrics, rate limits, usage caps, injected faults; ``XState.activity`` the X
Activity API's webhooks, subscriptions and deliveries, see ``activity``; ``XState.access_tier``
and the summoned-reply rule, see ``access``; ``XState.billing``, pay-per-use prices, credits and
402, see ``billing``; ``XState.day_limits``, the 24-hour windows of X's published rate-limit
table, see ``limits``; ``XState.spec``, either naming of the spec, see ``spec``), and
``python -m sandbox.x_api --port N`` runs it alone (controlled through ``/_sandbox/...``).
"""

from sandbox.x_api.app import create_app
from sandbox.x_api.model import (
    CREATE_TWEET,
    DELETE_TWEET,
    ENDPOINTS,
    LIKE,
    LOOKUP,
    ME,
    MEDIA_METADATA,
    MEDIA_UPLOAD,
    MENTIONS,
    USAGE,
    USER_TWEETS,
    USERS_LOOKUP,
    LikeRecord,
    Media,
    RateLimitRule,
    RateWindow,
    RequestRecord,
    Tweet,
    User,
)
from sandbox.x_api.state import XState

__all__ = [
    "CREATE_TWEET",
    "DELETE_TWEET",
    "ENDPOINTS",
    "LIKE",
    "LOOKUP",
    "ME",
    "MEDIA_METADATA",
    "MEDIA_UPLOAD",
    "MENTIONS",
    "USAGE",
    "USERS_LOOKUP",
    "USER_TWEETS",
    "LikeRecord",
    "Media",
    "RateLimitRule",
    "RateWindow",
    "RequestRecord",
    "Tweet",
    "User",
    "XState",
    "create_app",
]
