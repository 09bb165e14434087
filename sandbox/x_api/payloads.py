"""Posts and users as X Activity API deliveries carry them.

`x-api/activity/event-payloads.mdx` (xdevplatform/docs, read at its 2026-08-22 commit), for
`post.mention.create` and `post.reply.create`: the payload is a fully hydrated Post object (ids
as strings, counters with `_str` twins, `display_text_range` after the leading "@handle " run
of a reply); the users and tweets in `includes` are rendered the same way.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.x_api.model import Tweet


def _replied_to(tweet: Tweet) -> str | None:
    return next((r["id"] for r in tweet.referenced_tweets if r["type"] == "replied_to"), None)


def _display_start(text: str) -> int:
    """Where a reply's own text starts: after the leading "@handle " run X prepends."""
    at = 0
    while True:
        match = re.match(r"@[A-Za-z0-9_]{1,15}\s+", text[at:])
        if not match:
            return at
        at += match.end()


def _with_str(values: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = value
        out[f"{name}_str"] = str(value)
    return out


def _render_post(tweet: Tweet) -> dict[str, Any]:
    """A Post object as XAA payloads carry it (event-payloads.mdx, post.mention.create and
    post.reply.create): fully hydrated, ids as strings, counters with `_str` twins."""
    text = tweet.text
    start = _display_start(text) if tweet.referenced_tweets else 0
    post: dict[str, Any] = {
        "paid_partnership": False,
        "created_at": tweet.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "edit_history_tweet_ids": [tweet.id],
        "conversation_id": tweet.conversation_id,
        "display_text_range": [start, len(text)],
        "text": text,
        "author_id": tweet.author_id,
        "possibly_sensitive": False,
        "public_metrics": _with_str(dict(tweet.metrics)),
        "reply_settings": "everyone",
        "id": tweet.id,
        "lang": tweet.lang,
    }
    parent = _replied_to(tweet)
    if parent:
        post["in_reply_to_tweet_id"] = parent
    if tweet.in_reply_to_user_id:
        post["in_reply_to_user_id"] = tweet.in_reply_to_user_id
    if tweet.referenced_tweets:
        post["referenced_tweets"] = [dict(r) for r in tweet.referenced_tweets]
    if tweet.mentions:
        post["entities"] = {"mentions": [_with_str_offsets(m) for m in tweet.mentions]}
    if tweet.note_text is not None:
        note: dict[str, Any] = {"text": tweet.note_text}
        if tweet.note_mentions:
            note["entities"] = {"mentions": [_with_str_offsets(m) for m in tweet.note_mentions]}
        post["note_tweet"] = note
    return post


def _with_str_offsets(mention: dict[str, Any]) -> dict[str, Any]:
    return {
        "start": mention["start"],
        "start_str": str(mention["start"]),
        "end": mention["end"],
        "end_str": str(mention["end"]),
        "username": mention["username"],
        "id": mention["id"],
    }


def _render_user(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "created_at": user.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "protected": False,
        "verified": False,
    }
