"""In-memory state of the X API stand-in, driven by tests in-process (or via /_sandbox/...).

The data it holds is defined in ``model`` (the package and every module import it from
there); its 15-minute rate-limit windows are ``limits.RateLimiting`` and its injected faults
``faults.FaultInjection``, both mixed into :class:`XState`.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sandbox.x_api.counters import Counting
from sandbox.x_api.faults import FaultInjection
from sandbox.x_api.limits import PUBLISHED_15_MIN, DayLimits, RateLimiting
from sandbox.x_api.model import (
    LikeRecord,
    Media,
    RateLimitRule,
    RateWindow,
    RequestRecord,
    Tweet,
    User,
)
from sandbox.x_api.rewriting import store_text, tco_slug
from sandbox.x_api.text import MAX_LENGTH, tweet_length

if TYPE_CHECKING:
    from sandbox.x_api.activity import ActivityState


_MENTION = re.compile(r"(?<![A-Za-z0-9_])@([A-Za-z0-9_]{1,15})")


def _leading_handles(text: str) -> list[str]:
    """The "@handle " run a reply's text starts with (what X put there)."""
    found = []
    at = 0
    while match := re.match(r"@([A-Za-z0-9_]{1,15})\s+", text[at:]):
        found.append(match.group(1))
        at += match.end()
    return found


class XState(Counting, FaultInjection, RateLimiting):
    """The stand-in's world: one authenticated account, other users, tweets, media, likes,
    counters, rate-limit windows (15-minute and 24-hour), usage caps, the app's access tier,
    pay-per-use billing and credits, and injected faults.

    Safe to drive from tests in the server's event loop or from other threads.

    ``access_tier`` is the app's X access (``pay_per_use`` unless told: X's default for new
    developers since 2026-02-06). ``spec`` picks the field names answers use: ``"v2.166"``
    (``retweet_count``, ``referenced_tweets``, ``note_tweet``, ``includes.tweets``, problem
    ``not-authorized-for-field``) or ``"v2.167"`` (openapi.json of 2026-08-22: ``repost_count``,
    ``referenced_posts``, ``note_post``, ``includes.posts``, ``field-unauthorized``). Problem
    ``type`` URIs start with ``problem_base`` (live answers use api.twitter.com, the docs
    api.x.com). OAuth 1.0a signatures are checked against the URL each request was sent to.
    """

    def __init__(
        self,
        *,
        consumer_key: str = "sandbox-consumer-key",
        consumer_secret: str = "sandbox-consumer-secret",  # noqa: S107 - fake sandbox value
        access_token: str | None = None,
        access_token_secret: str = "sandbox-access-token-secret",  # noqa: S107
        bearer_token: str = "sandbox-bearer-token",  # noqa: S107
        user_id: str = "1700000000000000001",
        username: str = "chirpbase_bot",
        name: str = "Chirpbase Bot",
        access_tier: str = "pay_per_use",
        spec: Literal["v2.166", "v2.167"] = "v2.166",
        problem_base: str = "https://api.twitter.com/2/problems",
        credits_usd: float | None = None,
        timestamp_window_secs: float = 300.0,
        media_expires_after_secs: int = 86400,
        rate_limits: Mapping[str, RateLimitRule] | None = None,
        monthly_post_cap: int | None = None,
        monthly_read_cap: int | None = None,
        project_id: str = "1700000000000000999",
        cap_reset_day: int = 1,
        timeline_lag_s: float = 2.0,
        short_page_rate: float = 0.3,
        page_seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        # X's access tokens start with the user id (tweepy relies on it for likes).
        self.access_token = access_token or f"{user_id}-{secrets.token_hex(12)}"
        self.access_token_secret = access_token_secret
        self.bearer_token = bearer_token
        self.access_tier = access_tier
        self.spec = spec
        self.problem_base = problem_base.rstrip("/")
        self.timestamp_window_secs = timestamp_window_secs
        self.media_expires_after_secs = media_expires_after_secs
        self.project_id = project_id
        self.cap_reset_day = cap_reset_day
        self.monthly_post_cap = monthly_post_cap
        self.monthly_read_cap = monthly_read_cap
        # A user's timeline is eventually consistent: a post appears on it this many seconds
        # after it was created (the stand-in's clock), while a lookup by id finds it at once.
        # X documents no figure; clients see new posts missing for a while (linvi/tweetinvi#455,
        # twitter/the-algorithm#1762 "eventual consistency"). See sandbox/x_api/timeline.py.
        self.timeline_lag_s = timeline_lag_s
        # Share of timeline pages served short (even empty) while more results remain, with a
        # next_token: "If you get fewer results than max_results, more may still exist (continue
        # until no next_token)" (xdevplatform/docs x-api/fundamentals/pagination.mdx).
        self.short_page_rate = short_page_rate
        self.page_rng = random.Random(page_seed)
        self._clock = clock
        self._offset = 0.0
        self._next_id = 1_800_000_000_000_000_000
        self.users: dict[str, User] = {}
        self.tweets: dict[str, Tweet] = {}
        self.media: dict[str, Media] = {}
        self.likes: list[LikeRecord] = []
        self.liked: dict[str, set[str]] = {}
        self.requests: list[RequestRecord] = []
        self._in_flight: Counter[str] = Counter()
        self.posts_created = 0
        self.posts_read = 0
        self.daily_reads: Counter[str] = Counter()
        # X's published limits (sandbox/x_api/limits.py)
        from sandbox.x_api.billing import Billing

        self.rate_rules: dict[str, RateLimitRule] = dict(PUBLISHED_15_MIN)
        if rate_limits:
            self.rate_rules.update(rate_limits)
        self.day_limits = DayLimits(self.now)
        self.billing = Billing(clock=self.now, credits_usd=credits_usd)
        self._windows: dict[str, RateWindow] = {}
        self._init_faults()
        self._nonces: dict[str, float] = {}
        self.me = self.add_user(username, name=name, user_id=user_id)
        from sandbox.x_api.activity import ActivityState  # imported here: it imports this module

        # The X Activity API: webhooks, subscriptions, deliveries (sandbox/x_api/activity.py).
        self.activity: ActivityState = ActivityState(self)
        from sandbox.x_api.polls import PollBook

        self.polls = PollBook(self.now, self._new_id)  # polls and their votes (polls.py)

    # --- time and ids ------------------------------------------------------------------------

    def now(self) -> float:
        """The stand-in's clock (epoch seconds): real time plus :meth:`advance_time`."""
        return self._clock() + self._offset

    def advance_time(self, seconds: float) -> None:
        """Move the stand-in's clock forward (media expiry, rate windows, created_at).

        OAuth timestamps are still checked against real time.
        """
        with self._lock:
            self._offset += seconds

    def real_now(self) -> float:
        return self._clock()

    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1 + secrets.randbelow(1000)
            return str(self._next_id)

    def _now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    # --- credentials ---------------------------------------------------------------------------

    @property
    def credentials(self) -> dict[str, str]:
        """The settings a client needs (names as in chirpbase's environment)."""
        return {
            "X_API_KEY": self.consumer_key,
            "X_API_SECRET": self.consumer_secret,
            "X_ACCESS_TOKEN": self.access_token,
            "X_ACCESS_TOKEN_SECRET": self.access_token_secret,
            "X_BEARER_TOKEN": self.bearer_token,
        }

    def use_nonce(self, nonce: str, timestamp: float) -> bool:
        """Remember ``nonce``; False if it was already used inside the timestamp window."""
        with self._lock:
            horizon = self.real_now() - 2 * self.timestamp_window_secs
            if len(self._nonces) > 10_000:
                self._nonces = {k: v for k, v in self._nonces.items() if v >= horizon}
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = timestamp
            return True

    # --- users, tweets, mentions ------------------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        name: str | None = None,
        user_id: str | None = None,
        created_at: datetime | None = None,
        followers: int = 0,
    ) -> User:
        with self._lock:
            for user in self.users.values():
                if user.username.lower() == username.lower():
                    raise ValueError(f"username @{username} is taken")
            user = User(
                id=user_id or self._new_id(),
                username=username,
                name=name or username,
                created_at=created_at or self._now_datetime(),
                followers=followers,
            )
            self.users[user.id] = user
            return user

    def find_user(self, ref: str) -> User | None:
        """A user by id or by username (with or without @)."""
        with self._lock:
            if ref in self.users:
                return self.users[ref]
            wanted = ref.lstrip("@").lower()
            for user in self.users.values():
                if user.username.lower() == wanted:
                    return user
            return None

    def _mentioned(self, text: str) -> list[str]:
        found: list[str] = []
        for username in _MENTION.findall(text):
            user = self.find_user(username)
            if user and user.id not in found:
                found.append(user.id)
        return found

    def _mention_entities(self, text: str) -> list[dict[str, Any]]:
        """``entities.mentions`` of ``text``: handles of existing users, code point offsets."""
        out: list[dict[str, Any]] = []
        for match in _MENTION.finditer(text):
            user = self.find_user(match.group(1))
            if user:
                out.append(
                    {
                        "start": match.start(),
                        "end": match.end(),
                        "username": user.username,
                        "id": user.id,
                    }
                )
        return out

    def create_tweet(
        self,
        author_id: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        media_keys: list[str] | None = None,
        created_at: datetime | None = None,
        quote_of: str | None = None,
        made_with_ai: bool = False,
        lang: str = "en",
    ) -> Tweet:
        """Store a tweet as X would (no validation: the HTTP handler validates): its text
        rewritten (t.co links, media link, entities; sandbox/x_api/rewriting.py), on its
        author's timeline after ``timeline_lag_s``."""
        with self._lock:
            tweet_id = self._new_id()
            parent = self.tweets.get(in_reply_to) if in_reply_to else None
            author = self.users.get(author_id)
            source_text = text
            stored = store_text(
                text,
                tweet_id=tweet_id,
                username=author.username if author else author_id,
                media_keys=media_keys,
            )
            text, urls = stored.text, stored.urls
            refs = [{"type": "replied_to", "id": parent.id}] if parent else []
            if quote_of is not None:
                refs.append({"type": "quoted", "id": quote_of})
            note_text: str | None = None
            note_urls: list[dict[str, Any]] = []
            if tweet_length(source_text) > MAX_LENGTH:  # a long post: X keeps the whole note
                note_text, note_urls = text, urls
                head = text[:260].rstrip()
                urls = [u for u in urls if u["end"] <= len(head)]
                text = f"{head}\u2026 https://t.co/{tco_slug()}"
            created = created_at or self._now_datetime()
            tweet = Tweet(
                id=tweet_id,
                text=text,
                author_id=author_id,
                created_at=created,
                conversation_id=parent.conversation_id if parent else tweet_id,
                in_reply_to_user_id=parent.author_id if parent else None,
                referenced_tweets=refs,
                media_keys=list(media_keys or []),
                made_with_ai=made_with_ai,
                mentioned_user_ids=self._mentioned(note_text or text),
                mentions=self._mention_entities(text),
                note_text=note_text,
                note_mentions=self._mention_entities(note_text) if note_text else [],
                lang=lang,
                source_text=unicodedata.normalize("NFC", source_text),
                urls=urls,
                note_urls=note_urls,
                visible_at=created.timestamp() + self.timeline_lag_s,
            )
            if parent:
                parent.metrics["reply_count"] += 1
            self.tweets[tweet_id] = tweet
            self.activity.on_post(tweet)
            return tweet

    def add_mention(
        self,
        author: str,
        text: str | None = None,
        *,
        in_reply_to: str | None = None,
        created_at: datetime | None = None,
        lang: str = "en",
    ) -> Tweet:
        """A tweet by ``author`` (id or username) that mentions our account.

        With ``in_reply_to`` (one of our tweets' id) it is a reply in that conversation,
        starting with "@<our username>" as X writes replies; otherwise a plain mention.
        """
        with self._lock:
            user = self.find_user(author)
            if user is None:
                raise KeyError(f"unknown user {author!r}; add_user() first")
            handle = f"@{self.me.username}"
            if in_reply_to is not None and in_reply_to not in self.tweets:
                raise KeyError(f"unknown tweet {in_reply_to!r}")
            body = text if text is not None else "nice one!"
            if handle.lower() not in body.lower():
                body = f"{handle} {body}"
            return self.create_tweet(
                user.id, body, in_reply_to=in_reply_to, created_at=created_at, lang=lang
            )

    def add_reply(
        self, author: str, to_tweet_id: str, text: str | None = None, *, lang: str = "en"
    ) -> Tweet:
        """A reply from ``author`` to one of our tweets (shortcut for :meth:`add_mention`)."""
        return self.add_mention(author, text, in_reply_to=to_tweet_id, lang=lang)

    def add_reply_without_handle(self, author: str, to_tweet_id: str, text: str) -> Tweet:
        """A reply from ``author`` to ``to_tweet_id`` with the replied-to handles taken out (X's
        apps let a person deselect whom they reply to; the API's ``exclude_reply_user_ids``):
        it replies to that post's author without mentioning them, so it does not summon them
        (x-api/posts/manage-tweets/integrate.mdx, "Reply restrictions")."""
        with self._lock:
            user = self.find_user(author)
            if user is None:
                raise KeyError(f"unknown user {author!r}; add_user() first")
            if to_tweet_id not in self.tweets:
                raise KeyError(f"unknown tweet {to_tweet_id!r}")
            return self.create_tweet(user.id, text, in_reply_to=to_tweet_id)

    def reply_handles(self, author_id: str, parent: Tweet, exclude: set[str]) -> list[str]:
        """The handles X puts before a reply's text: the replied-to post's author, then the
        users that post itself replied to (its own leading handles), without the replier and
        without ``exclude`` (``reply.exclude_reply_user_ids``; the post's author cannot be
        left out). openapi.json ``CreatePostsReply``: ``auto_populate_reply_metadata`` is
        "accepted for compatibility" and dropped, the metadata is always populated; the
        conversation_id page's example reply reads "@user Great point!"
        (x-api/fundamentals/conversation-id.mdx). They do not count towards the 280 weighted
        characters (``display_text_range`` starts after them)."""
        with self._lock:
            lead = _leading_handles(parent.text)
            ids = [parent.author_id]
            for handle in lead:
                user = self.find_user(handle)
                if user is not None:
                    ids.append(user.id)
            out: list[str] = []
            for user_id in dict.fromkeys(ids):
                if user_id == author_id or (user_id in exclude and user_id != parent.author_id):
                    continue
                user = self.users.get(user_id)
                if user is not None:
                    out.append(user.username)
            return out

    def add_post(self, author: str, text: str, *, quote_of: str | None = None) -> Tweet:
        """A post by ``author`` that does not mention our account (unless its text does);
        with ``quote_of``, a quote of that post."""
        with self._lock:
            user = self.find_user(author)
            if user is None:
                raise KeyError(f"unknown user {author!r}; add_user() first")
            return self.create_tweet(user.id, text, quote_of=quote_of)

    @staticmethod
    def detect_lang(text: str) -> str:
        """X detects a post's language; the stand-in tells scripts apart and calls the rest
        English (enough for the language filter's tests: "ja", "ko", "zh", "en")."""
        if re.search(r"[\u3040-\u30ff]", text):
            return "ja"
        if re.search(r"[\uac00-\ud7af]", text):
            return "ko"
        if re.search(r"[\u4e00-\u9fff]", text):
            return "zh"
        return "en"

    def summoned_by(self, tweet: Tweet) -> bool:
        """Whether ``tweet`` summoned our account: it is ours, mentions us or quotes one of our
        posts (sandbox/x_api/access.py)."""
        from sandbox.x_api.access import summoned

        with self._lock:
            quoted = [r["id"] for r in tweet.referenced_tweets if r.get("type") == "quoted"]
            mine = {t.id for t in self.tweets.values() if t.author_id == self.me.id}
            return summoned(
                tweet.author_id, tweet.mentioned_user_ids, quoted, me=self.me.id, my_posts=mine
            )

    def advance_metrics(self, tweet_id: str, **deltas: int) -> dict[str, int]:
        """Add to a tweet's counters (``like_count=3, impression_count=100, ...``)."""
        with self._lock:
            tweet = self.tweets[tweet_id]
            for name, delta in deltas.items():
                if name in tweet.metrics:
                    tweet.metrics[name] += delta
                elif name in tweet.private_metrics:
                    tweet.private_metrics[name] += delta
                else:
                    raise KeyError(f"unknown metric {name!r}")
            return {**tweet.metrics, **tweet.private_metrics}

    def get_tweet(self, tweet_id: str) -> Tweet | None:
        with self._lock:
            return self.tweets.get(tweet_id)

    def posted_tweets(self, *, include_deleted: bool = False) -> list[Tweet]:
        """Tweets created by our account, oldest first."""
        with self._lock:
            return [
                tweet
                for tweet in sorted(self.tweets.values(), key=lambda t: int(t.id))
                if tweet.author_id == self.me.id and (include_deleted or not tweet.deleted)
            ]

    def like(self, user_id: str, tweet_id: str) -> bool:
        """Record a like request; True if it was new (X answers liked=true either way)."""
        with self._lock:
            liked = self.liked.setdefault(user_id, set())
            newly = tweet_id not in liked
            if newly:
                liked.add(tweet_id)
                self.tweets[tweet_id].metrics["like_count"] += 1
            self.likes.append(LikeRecord(user_id, tweet_id, self.now(), newly))
            return newly

    def like_requests(self, tweet_id: str | None = None) -> list[LikeRecord]:
        with self._lock:
            return [like for like in self.likes if tweet_id is None or like.tweet_id == tweet_id]

    # --- media ----------------------------------------------------------------------------------

    def add_media(
        self,
        owner_id: str,
        *,
        size: int,
        mime_type: str,
        media_category: str,
        width: int | None = None,
        height: int | None = None,
    ) -> Media:
        with self._lock:
            media_id = self._new_id()
            now = self.now()
            media = Media(
                id=media_id,
                media_key=f"3_{media_id}",
                owner_id=owner_id,
                size=size,
                mime_type=mime_type,
                media_category=media_category,
                created_at=now,
                expires_at=now + self.media_expires_after_secs,
                width=width,
                height=height,
            )
            self.media[media_id] = media
            return media

    # --- views -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able summary for /_sandbox/state."""
        with self._lock:
            return {
                "me": self.me.to_json(),
                "users": [user.to_json() for user in self.users.values()],
                "tweets": [tweet.to_json() for tweet in self.tweets.values()],
                "media": [
                    {
                        "id": m.id,
                        "media_key": m.media_key,
                        "size": m.size,
                        "mime_type": m.mime_type,
                        "alt_text": m.alt_text,
                        "expires_at": m.expires_at,
                    }
                    for m in self.media.values()
                ],
                "likes": [vars(like) for like in self.likes],
                "request_counts": self.request_counts(),
                "access_tier": self.access_tier,
                "billing": self.billing.snapshot(),
                "usage": {
                    "posts_created": self.posts_created,
                    "posts_read": self.posts_read,
                    "monthly_post_cap": self.monthly_post_cap,
                    "monthly_read_cap": self.monthly_read_cap,
                },
                "rate_limits": {
                    endpoint: vars(window) for endpoint, window in self._windows.items()
                },
                "now": self.now(),
            }
