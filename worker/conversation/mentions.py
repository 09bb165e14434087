"""Mapping a mention from X to a `replies` row.

The x-webhook edge function (supabase/functions/_shared/replies.ts, `replyFromV2` and
`repliesFromActivity`) maps posts with the same rules, checked against the shared vectors in
tests/fixtures/reply_vectors.json, so a reply ingested by polling and by webhook produces the
same row:

* keep a post that replies to the bot (``in_reply_to_user_id``) or mentions it
  (``entities.mentions`` or ``note_tweet.entities.mentions``);
* drop the bot's own posts, retweets (``referenced_tweets[].type == "retweeted"``) and anything
  else (a post in a thread the bot is in that neither replies to nor mentions it);
* ``content`` is the full text (``note_tweet.text`` for a long post, else ``text``), as X sends
  it (not trimmed, not HTML-unescaped); ``created_at`` is ISO-8601 UTC with milliseconds;
* ``mentions_account``: the mention entities name the bot (a reply to the bot that left its
  handle out did not summon it: X refuses a reply to it on self-serve access);
  ``quoted_tweet_id``: the post it quotes; ``lang``: X's language tag, None when malformed.

An X Activity API delivery carries the same v2 Post object as ``payload``
(:func:`reply_rows_from_activity` reads one, with the edge function's rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from worker.clients.x.shapes import parse_tweets

SkipReason = Literal["bad_id", "bad_author", "own_post", "retweet", "not_for_bot"]

_ID = re.compile(r"^[0-9]{1,20}$")
# A BCP 47 tag as X writes one ("en", "zh-cn", "und"); replies.ts `langOf` uses the same pattern.
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")


class MentionLike(Protocol):
    id: str
    text: str
    author_id: str | None
    author_username: str | None
    created_at: datetime | None
    conversation_id: str | None
    in_reply_to_user_id: str | None
    in_reply_to_tweet_id: str | None
    referenced_tweets: tuple[tuple[str, str], ...]
    note_text: str | None
    mentioned_user_ids: tuple[str, ...]
    lang: str | None


def _id_of(value: object) -> str | None:
    """A snowflake id given as a string of digits; anything else is None."""
    return value if isinstance(value, str) and _ID.match(value) else None


def storable(text: str | None) -> str | None:
    """Text as Postgres can hold it: lone surrogates (valid in JSON, not in UTF-8) become U+FFFD
    and NUL is dropped. One such post would otherwise fail every poll's insert, for good. The
    webhook cleans posts the same way (replies.ts `str`)."""
    if text is None:
        return None
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def iso_millis(moment: datetime | None) -> str | None:
    """``2026-11-20T10:15:30.000Z`` (what JavaScript's ``toISOString`` gives), or None."""
    if moment is None:
        return None
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if not 2006 <= utc.year <= 9999:
        return None
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def skip_reason(tweet: MentionLike, *, bot_user_id: str) -> SkipReason | None:
    """Why a post is not a reply to or mention of the bot (None: it is one)."""
    if _id_of(tweet.id) is None:
        return "bad_id"
    author = _id_of(tweet.author_id)
    if author is None:
        return "bad_author"
    if author == bot_user_id:
        return "own_post"
    if any(kind == "retweeted" for kind, _ in tweet.referenced_tweets):
        return "retweet"
    replies_to_bot = _id_of(tweet.in_reply_to_user_id) == bot_user_id
    if not replies_to_bot and bot_user_id not in tweet.mentioned_user_ids:
        return "not_for_bot"
    return None


def mention_to_reply_row(
    tweet: MentionLike, *, bot_user_id: str, source: str
) -> dict[str, Any] | None:
    """The replies row for a post, or None when it is not a reply to or mention of the bot."""
    if skip_reason(tweet, bot_user_id=bot_user_id) is not None:
        return None
    return {
        "reply_id": str(tweet.id),
        "original_tweet_id": _id_of(tweet.in_reply_to_tweet_id),
        "author_id": str(tweet.author_id),
        "author_username": storable(tweet.author_username),
        "content": storable(tweet.note_text if tweet.note_text is not None else tweet.text),
        "created_at": iso_millis(tweet.created_at),
        "conversation_id": _id_of(tweet.conversation_id),
        "mentions_account": bot_user_id in tweet.mentioned_user_ids,
        "quoted_tweet_id": next(
            (_id_of(ref) for kind, ref in tweet.referenced_tweets if kind == "quoted"), None
        ),
        "lang": tweet.lang if isinstance(tweet.lang, str) and _LANG.match(tweet.lang) else None,
        "source": source,
    }


IgnoreReason = Literal["not_an_event", "not_a_post_event", "other_account"]


@dataclass
class ActivityRows:
    """What one X Activity API delivery gives: rows, posts dropped, events ignored."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkipReason | Literal["not_an_object"]] = field(default_factory=list)
    ignored: list[IgnoreReason] = field(default_factory=list)


def reply_rows_from_activity(
    body: Any, *, bot_user_id: str, source: str = "webhook"
) -> ActivityRows:
    """The rows of an X Activity API delivery (``{"data": event}``; an array of events too).

    The twin of replies.ts ``repliesFromActivity``: ``post.*`` events but ``post.delete`` carry a
    v2 Post as ``payload``, read by the client's own parser with ``includes.users`` (plain or
    wrapped in ``{"data": ...}``) and mapped by :func:`mention_to_reply_row`; events for another
    account (``filter.user_id``) or about something else are ignored. Pure and total.
    """
    out = ActivityRows()
    data = body.get("data") if isinstance(body, dict) else None
    events = data if isinstance(data, list) else [] if data is None else [data]
    seen: set[str] = set()
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
            out.ignored.append("not_an_event")
            continue
        event_type: str = event["event_type"]
        flt = event.get("filter")
        filter_user = _id_of(flt.get("user_id")) if isinstance(flt, dict) else None
        if filter_user is not None and filter_user != bot_user_id:
            out.ignored.append("other_account")
            continue
        payload = event.get("payload")
        if not event_type.startswith("post.") or event_type == "post.delete":
            out.ignored.append("not_a_post_event")
            continue
        if not isinstance(payload, dict):
            out.ignored.append("not_a_post_event")
            continue
        includes = event.get("includes")
        raw_users = includes.get("users") if isinstance(includes, dict) else None
        users = [
            u["data"] if isinstance(u, dict) and isinstance(u.get("data"), dict) else u
            for u in (raw_users if isinstance(raw_users, list) else [])
        ]
        tweets, _ = parse_tweets({"data": payload, "includes": {"users": users}})
        if not tweets:
            out.skipped.append("bad_id")
            continue
        tweet = tweets[0]
        reason = skip_reason(tweet, bot_user_id=bot_user_id)
        if reason is not None:
            out.skipped.append(reason)
            continue
        row = mention_to_reply_row(tweet, bot_user_id=bot_user_id, source=source)
        if row is not None and row["reply_id"] not in seen:
            seen.add(row["reply_id"])
            out.rows.append(row)
    return out
