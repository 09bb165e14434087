"""Mapping a mention from X to a `replies` row.

The x-webhook edge function (supabase/functions/_shared/replies.ts) maps webhook deliveries with
the same rules, checked against the shared vectors in tests/fixtures/reply_vectors.json, so a
reply ingested by polling and by webhook produces the same row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class MentionLike(Protocol):
    id: str
    text: str
    author_id: str | None
    author_username: str | None
    created_at: datetime | None
    conversation_id: str | None
    in_reply_to_tweet_id: str | None


def mention_to_reply_row(
    tweet: MentionLike, *, bot_user_id: str, source: str
) -> dict[str, Any] | None:
    """The replies row for a mention, or None for the bot's own tweets."""
    if not tweet.author_id or tweet.author_id == bot_user_id:
        return None
    return {
        "reply_id": str(tweet.id),
        "original_tweet_id": tweet.in_reply_to_tweet_id,
        "author_id": str(tweet.author_id),
        "author_username": tweet.author_username,
        "content": tweet.text,
        "created_at": tweet.created_at.isoformat() if tweet.created_at else None,
        "conversation_id": tweet.conversation_id,
        "source": source,
    }
