"""The X stand-in's data model: endpoint keys, rate-limit rules, users, posts, media, records.

Endpoint keys are "METHOD path-template", as X's rate-limit documentation names them
(docs.x.com/x-api/fundamentals/rate-limits). ``User.to_json`` renders what
``user.fields=created_at,public_metrics`` return (openapi.json ``User``, ``UserPublicMetrics``);
``Tweet`` keeps both the text as the client sent it (X's duplicate check) and as X returns it
(sandbox/x_api/rewriting.py), and X's public metrics (``retweet_count`` ...) and private ones
(``url_link_clicks``, ``user_profile_clicks``, ``engagements``). ``XState`` (state.py) holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Endpoint keys: "METHOD path-template", as in X's rate-limit documentation.
ME = "GET /2/users/me"
CREATE_TWEET = "POST /2/tweets"
DELETE_TWEET = "DELETE /2/tweets/:id"
LIKE = "POST /2/users/:id/likes"
MENTIONS = "GET /2/users/:id/mentions"
USER_TWEETS = "GET /2/users/:id/tweets"
LOOKUP = "GET /2/tweets"
MEDIA_UPLOAD = "POST /2/media/upload"
MEDIA_METADATA = "POST /2/media/metadata"
USAGE = "GET /2/usage/tweets"
USERS_LOOKUP = "GET /2/users"
ENDPOINTS = (
    ME,
    CREATE_TWEET,
    DELETE_TWEET,
    LIKE,
    MENTIONS,
    USER_TWEETS,
    LOOKUP,
    MEDIA_UPLOAD,
    MEDIA_METADATA,
    USAGE,
    USERS_LOOKUP,
)

PUBLIC_METRICS = (
    "retweet_count",
    "reply_count",
    "like_count",
    "quote_count",
    "bookmark_count",
    "impression_count",
)
PRIVATE_METRICS = ("url_link_clicks", "user_profile_clicks", "engagements")


@dataclass(frozen=True)
class RateLimitRule:
    """``limit`` requests per ``window_secs`` (X uses 15-minute or 24-hour windows)."""

    limit: int
    window_secs: float = 900.0


@dataclass
class RateWindow:
    limit: int
    window_secs: float
    remaining: int
    reset_at: float  # epoch seconds


@dataclass
class User:
    """A user: ``created_at`` is when the account was made and ``followers`` its follower count
    (what ``user.fields=created_at,public_metrics`` return: openapi.json ``User``,
    ``UserPublicMetrics``)."""

    id: str
    username: str
    name: str
    created_at: datetime
    followers: int = 0
    following: int = 0
    posts: int = 0

    def to_json(self, fields: set[str] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name, "username": self.username}
        if fields and "created_at" in fields:
            data["created_at"] = iso_ms(self.created_at)
        if fields and "public_metrics" in fields:
            data["public_metrics"] = {
                "followers_count": self.followers,
                "following_count": self.following,
                "tweet_count": self.posts,
                "listed_count": 0,
            }
        return data


@dataclass
class Tweet:
    id: str
    text: str
    author_id: str
    created_at: datetime
    conversation_id: str
    in_reply_to_user_id: str | None = None
    referenced_tweets: list[dict[str, str]] = field(default_factory=list)
    media_keys: list[str] = field(default_factory=list)
    made_with_ai: bool = False
    mentioned_user_ids: list[str] = field(default_factory=list)
    # entities.mentions as X renders them ({start, end, username, id}) for ``text``
    mentions: list[dict[str, Any]] = field(default_factory=list)
    # A long post (over 280 weighted characters): X's ``note_tweet``, with its own entities;
    # ``text`` then holds the truncated form X shows, ending in "… https://t.co/...".
    note_text: str | None = None
    note_mentions: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PUBLIC_METRICS, 0))
    private_metrics: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(PRIVATE_METRICS, 0)
    )
    deleted: bool = False
    # X's language of the post (``tweet.fields=lang``, BCP 47; "und" when undetermined). X
    # detects it; the stand-in is told (``lang=`` on the helpers that make posts).
    lang: str = "en"
    # The text exactly as the client sent it (X's duplicate check compares these); ``text`` is
    # what X returns: links wrapped in t.co, a media link appended, ``&<>`` escaped
    # (sandbox/x_api/rewriting.py), with ``urls`` as its ``entities.urls``.
    source_text: str = ""
    urls: list[dict[str, Any]] = field(default_factory=list)
    note_urls: list[dict[str, Any]] = field(default_factory=list)
    # When the post shows up on its author's timeline (stand-in clock): see XState.timeline_lag_s.
    visible_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Everything the stand-in knows (for /_sandbox views and tests)."""
        return {
            "id": self.id,
            "text": self.text,
            "author_id": self.author_id,
            "created_at": iso_ms(self.created_at),
            "conversation_id": self.conversation_id,
            "in_reply_to_user_id": self.in_reply_to_user_id,
            "referenced_tweets": list(self.referenced_tweets),
            "media_keys": list(self.media_keys),
            "source_text": self.source_text,
            "urls": [dict(u) for u in self.urls],
            "made_with_ai": self.made_with_ai,
            "note_text": self.note_text,
            "lang": self.lang,
            "public_metrics": dict(self.metrics),
            "private_metrics": dict(self.private_metrics),
            "deleted": self.deleted,
        }


@dataclass
class Media:
    id: str
    media_key: str
    owner_id: str
    size: int
    mime_type: str
    media_category: str
    created_at: float
    expires_at: float
    alt_text: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class LikeRecord:
    user_id: str
    tweet_id: str
    at: float
    newly_liked: bool


@dataclass(frozen=True)
class RequestRecord:
    method: str
    endpoint: str
    path: str
    status: int
    auth: str  # "user", "app" or "none"
    at: float


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )
