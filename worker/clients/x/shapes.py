"""What X's answers become: posts, users, metrics, usage, rate limits (pure parsing, total).

Both namings of X's spec are read: openapi.json v2.167 (2026-08-22) renamed ``retweet_count``
to ``repost_count``, ``referenced_tweets`` to ``referenced_posts``, ``note_tweet`` to
``note_post`` and ``includes.tweets`` to ``includes.posts``, while v2.166 and the prose pages
keep the old names; which one the live API sends is not known, so either is accepted
(:func:`older_names`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.clients.x.polls import PollResult


@dataclass(frozen=True)
class RateLimit:
    """The last ``x-rate-limit-*`` headers X sent for an endpoint, and its 24-hour window
    (``x-app-limit-24hour-*`` or ``x-user-limit-24hour-*``) when X sent one."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None
    seen_at: datetime
    day_limit: int | None = None
    day_remaining: int | None = None
    day_reset_at: datetime | None = None
    day_scope: str | None = None  # "app" or "user"

    def waits_until(self, now: datetime) -> datetime | None:
        """When a spent window resets (the later one if both are), or None when one call fits."""
        spent = [
            reset
            for remaining, reset in (
                (self.remaining, self.reset_at),
                (self.day_remaining, self.day_reset_at),
            )
            if remaining is not None and remaining <= 0 and reset is not None and reset > now
        ]
        return max(spent) if spent else None


@dataclass(frozen=True)
class XUser:
    id: str
    username: str
    name: str
    # With user.fields=created_at,public_metrics (XClient.users(details=True)):
    created_at: datetime | None = None
    followers_count: int | None = None


@dataclass(frozen=True)
class UrlEntity:
    """One ``entities.urls`` item: a t.co link in a post's text and what it stands for.

    X wraps every link in t.co and appends one for a post's media; ``media_key`` marks that
    media link (openapi.json ``PostEntities.urls``)."""

    url: str
    expanded_url: str | None = None
    display_url: str | None = None
    media_key: str | None = None


@dataclass  # not frozen: satisfies worker.conversation.mentions.MentionLike (plain attributes)
class XTweet:
    id: str
    text: str
    author_id: str | None = None
    author_username: str | None = None
    created_at: datetime | None = None
    conversation_id: str | None = None
    in_reply_to_user_id: str | None = None
    in_reply_to_tweet_id: str | None = None
    referenced_tweets: tuple[tuple[str, str], ...] = ()
    public_metrics: dict[str, int] = field(default_factory=dict)
    non_public_metrics: dict[str, int] | None = None
    organic_metrics: dict[str, int] | None = None
    note_text: str | None = None  # ``note_tweet.text``: the whole text of a long post
    mentioned_user_ids: tuple[str, ...] = ()  # ``entities.mentions`` (and the note's) ids
    lang: str | None = None  # X's language tag (BCP 47; "und" when X could not tell)
    urls: tuple[UrlEntity, ...] = ()  # ``entities.urls`` of ``text``
    media_keys: tuple[str, ...] = ()  # ``attachments.media_keys``


@dataclass(frozen=True)
class TimelinePage:
    """One page of a timeline; only a missing ``next_token`` ends it (pages may be short)."""

    tweets: list[XTweet]
    next_token: str | None


@dataclass(frozen=True)
class MentionsPage:
    """Mentions newer than ``since_id``, newest first, across the pages fetched."""

    tweets: list[XTweet]
    newest_id: str | None
    users: dict[str, XUser]
    complete: bool  # False when max_pages stopped the walk before X's last page
    requests: int = 1  # pages asked of X


@dataclass(frozen=True)
class TweetMetrics:
    """Counters of one tweet: public ones always, private ones when X allowed them."""

    id: str
    likes: int
    retweets: int
    replies: int
    quotes: int
    bookmarks: int
    impressions: int
    url_link_clicks: int | None = None
    user_profile_clicks: int | None = None
    non_public_metrics: dict[str, int] | None = None
    organic_metrics: dict[str, int] | None = None
    poll: PollResult | None = None  # the post's poll and its results, when it has one


@dataclass(frozen=True)
class OwnTimeline:
    """Metrics of the account's posts after a moment, from its own timeline (owned reads)."""

    metrics: list[TweetMetrics]
    served_ids: list[str]  # every post X returned (and bills), including ones older than asked
    pages: int
    complete: bool  # False when max_pages stopped the walk before reaching the moment

    @property
    def served(self) -> int:
        return len(self.served_ids)


class LookupResult(list[TweetMetrics]):
    """Metrics of the tweets found (a list), plus ``missing`` ids X reported as not found."""

    def __init__(self, items: Iterable[TweetMetrics] = (), missing: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.missing: list[str] = list(missing)


@dataclass(frozen=True)
class XUsage:
    """``GET /2/usage/tweets``: posts read this billing cycle against the project's cap."""

    project_id: str | None
    project_usage: int
    project_cap: int | None
    cap_reset_day: int | None
    daily: dict[str, int]


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # a malformed timestamp costs the field, never the whole page
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_RENAMED_FIELDS = (
    ("referenced_posts", "referenced_tweets"),
    ("note_post", "note_tweet"),
    ("edit_history_post_ids", "edit_history_tweet_ids"),
)


def older_names(item: dict[str, Any]) -> dict[str, Any]:
    """A post object with v2.167's names mapped to the older ones (both are accepted)."""
    out = dict(item)
    for new, old in _RENAMED_FIELDS:
        if new in out and old not in out:
            out[old] = out.pop(new)
    for metrics in ("public_metrics", "organic_metrics", "non_public_metrics"):
        counts = out.get(metrics)
        if isinstance(counts, dict) and "repost_count" in counts and "retweet_count" not in counts:
            counts = dict(counts)
            counts["retweet_count"] = counts.pop("repost_count")
            out[metrics] = counts
    return out


def included_posts(body: Any) -> list[dict[str, Any]]:
    """``includes.tweets`` (or v2.167's ``includes.posts``) of a response body."""
    includes = body.get("includes") if isinstance(body, dict) else None
    if not isinstance(includes, dict):
        return []
    found = includes.get("tweets", includes.get("posts"))
    return [older_names(p) for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def parse_tweets(body: Any) -> tuple[list[XTweet], dict[str, XUser]]:
    """The posts of one X API v2 response body and the users it includes, by id.

    Pure and total: ``data`` may be a list (timelines, lookups) or one object (a single post);
    entries that are not objects or have no id are skipped, malformed fields become None.
    This is how every XClient call reads posts (and what the shared reply vectors check).
    """
    if not isinstance(body, dict):
        return [], {}
    users = _users(body)
    data = body.get("data")
    items = data if isinstance(data, list) else [data]
    tweets = [
        _tweet(older_names(item), users)
        for item in items
        if isinstance(item, dict) and item.get("id")
    ]
    return tweets, users


def _users(body: dict[str, Any]) -> dict[str, XUser]:
    includes = body.get("includes")
    return {
        u.id: u for u in parse_users(includes.get("users") if isinstance(includes, dict) else None)
    }


def parse_users(items: Any) -> list[XUser]:
    """User objects (``data`` of GET /2/users, ``includes.users``): total, malformed fields
    become None. ``public_metrics.followers_count`` and ``created_at`` when X sent them."""
    out = []
    for user in items if isinstance(items, list) else []:
        if not isinstance(user, dict) or not user.get("id"):
            continue
        metrics = user.get("public_metrics")
        followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
        out.append(
            XUser(
                id=str(user["id"]),
                username=str(user.get("username") or ""),
                name=str(user.get("name") or ""),
                created_at=_parse_time(user.get("created_at")),
                followers_count=followers
                if isinstance(followers, int) and not isinstance(followers, bool)
                else None,
            )
        )
    return out


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _mention_ids(entities: Any) -> list[str]:
    mentions = entities.get("mentions") if isinstance(entities, dict) else None
    return [
        str(m["id"])
        for m in (mentions if isinstance(mentions, list) else [])
        if isinstance(m, dict) and m.get("id")
    ]


def _url_entities(entities: Any) -> tuple[UrlEntity, ...]:
    urls = entities.get("urls") if isinstance(entities, dict) else None
    return tuple(
        UrlEntity(
            url=u["url"],
            expanded_url=_str_or_none(u.get("expanded_url")),
            display_url=_str_or_none(u.get("display_url")),
            media_key=_str_or_none(u.get("media_key")),
        )
        for u in (urls if isinstance(urls, list) else [])
        if isinstance(u, dict) and isinstance(u.get("url"), str) and u["url"]
    )


def _media_keys(attachments: Any) -> tuple[str, ...]:
    keys = attachments.get("media_keys") if isinstance(attachments, dict) else None
    return tuple(str(k) for k in (keys if isinstance(keys, list) else []) if _str_or_none(k))


def _tweet(item: dict[str, Any], users: dict[str, XUser]) -> XTweet:
    raw_refs = item.get("referenced_tweets")
    refs = tuple(
        (str(ref.get("type")), str(ref.get("id")))
        for ref in (raw_refs if isinstance(raw_refs, list) else [])
        if isinstance(ref, dict)
    )
    author = _str_or_none(item.get("author_id"))
    reply_to = next((ref_id for kind, ref_id in refs if kind == "replied_to"), None)
    raw_note = item.get("note_tweet")
    note: dict[str, Any] = raw_note if isinstance(raw_note, dict) else {}
    note_text = note.get("text") if isinstance(note.get("text"), str) else None
    mentioned = _mention_ids(item.get("entities")) + _mention_ids(note.get("entities"))
    text = item.get("text")
    public = item.get("public_metrics")
    return XTweet(
        id=str(item["id"]),
        text=text if isinstance(text, str) else "",
        author_id=author,
        author_username=users[author].username if author in users else None,
        created_at=_parse_time(item.get("created_at")),
        conversation_id=_str_or_none(item.get("conversation_id")),
        in_reply_to_user_id=_str_or_none(item.get("in_reply_to_user_id")),
        in_reply_to_tweet_id=reply_to,
        referenced_tweets=refs,
        public_metrics=dict(public) if isinstance(public, dict) else {},
        non_public_metrics=item.get("non_public_metrics"),
        organic_metrics=item.get("organic_metrics"),
        note_text=note_text,
        mentioned_user_ids=tuple(dict.fromkeys(mentioned)),
        lang=item.get("lang") if isinstance(item.get("lang"), str) else None,
        urls=_url_entities(item.get("entities")),
        media_keys=_media_keys(item.get("attachments")),
    )


def parse_metrics(item: dict[str, Any]) -> TweetMetrics:
    item = older_names(item)
    public = item.get("public_metrics") or {}
    private = item.get("non_public_metrics")
    return TweetMetrics(
        id=str(item["id"]),
        likes=int(public.get("like_count", 0)),
        retweets=int(public.get("retweet_count", 0)),
        replies=int(public.get("reply_count", 0)),
        quotes=int(public.get("quote_count", 0)),
        bookmarks=int(public.get("bookmark_count", 0)),
        impressions=int(public.get("impression_count", 0)),
        url_link_clicks=int(private["url_link_clicks"])
        if private and "url_link_clicks" in private
        else None,
        user_profile_clicks=(
            int(private["user_profile_clicks"])
            if private and "user_profile_clicks" in private
            else None
        ),
        non_public_metrics=private,
        organic_metrics=item.get("organic_metrics"),
    )
