"""When the account may answer a post: X's rules for automated replies and the operator's own.

X (docs.x.com/developer-guidelines, "Automation rules"; x-api/posts/manage-tweets/integrate.mdx,
"Reply restrictions"): reply only to a post that summoned the account (mentions it or quotes one
of its posts), at most one reply per interaction, stop for anyone who says "stop". The operator
(`configs.conversation`): on or off, authors to skip, languages, daily caps, a reply window,
quiet hours, and a minimum account age and follower count for authors.

The database applies the cheap rules too (SQL `reply_draft_refusal`, at the `replies` trigger and
again when the draft is stored, under a lock); the worker applies all of them, here, before it
spends anything, on facts read in one query (`reply_draft_facts`). Both say why in one line; the
job ends `skipped` with that reason. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from worker.config.models import Conversation, QuietHours


@dataclass(frozen=True)
class ReplyFacts:
    """What the policy looks at for one `replies` row (worker/sql/conversation.sql
    `reply_draft_facts`)."""

    reply_id: str
    author_id: str
    author_username: str | None
    created_at: datetime
    lang: str | None
    bot_user_id: str | None
    summoned: bool
    opted_out: bool
    draft_id: int | None
    open_turn_draft_id: int | None
    answered_turn_draft_id: int | None
    drafts_today: int
    author_drafts_today: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReplyFacts:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def skipped_author(conv: Conversation, author_id: str, username: str | None) -> bool:
    """In `skip_authors`: by id, or by username with or without @, any case."""
    name = (username or "").lower()
    for entry in conv.skip_authors:
        entry = entry.strip()
        if entry == author_id or (name and entry.lstrip("@").lower() == name):
            return True
    return False


def refusal(facts: ReplyFacts, conv: Conversation, now: datetime) -> str | None:
    """Why no draft may be written for this post now (None: it may), in SQL
    `reply_draft_refusal`'s order and words."""
    if not conv.enabled:
        return "reply drafts are off (configs.conversation.enabled)"
    if facts.author_id == facts.bot_user_id:
        return "the account's own post"
    if facts.opted_out:
        return "the author opted out of replies"
    if skipped_author(conv, facts.author_id, facts.author_username):
        return "the author is in configs.conversation.skip_authors"
    if not facts.summoned:
        return (
            "the post did not summon the account (X allows a reply only to a post that "
            "mentions it or quotes one of its posts)"
        )
    if conv.languages and (facts.lang or "und") != "und" and facts.lang not in conv.languages:
        return f'the post is in "{facts.lang}", not in configs.conversation.languages'
    if facts.draft_id is not None:
        return f"draft {facts.draft_id} answers this post already (one reply per interaction)"
    if facts.created_at < now - timedelta(hours=conv.reply_window_hours):
        return (
            "the post is older than configs.conversation.reply_window_hours "
            f"({conv.reply_window_hours} h): a late answer is worse than none"
        )
    if facts.open_turn_draft_id is not None:
        return (
            f"draft {facts.open_turn_draft_id} is open for this conversation turn "
            "(one reply per turn)"
        )
    if facts.answered_turn_draft_id is not None:
        return (
            f"draft {facts.answered_turn_draft_id} already answered this conversation turn "
            "(one reply per turn)"
        )
    if facts.drafts_today >= conv.daily_cap:
        return (
            f"the daily cap of {conv.daily_cap} drafts is reached (configs.conversation.daily_cap)"
        )
    if facts.author_drafts_today >= conv.per_author_daily_cap:
        return (
            f"the author's daily cap of {conv.per_author_daily_cap} drafts is reached "
            "(configs.conversation.per_author_daily_cap)"
        )
    return None


def quiet_until(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """The end of the quiet hours `now` falls in (aware, UTC), or None when it is not quiet.

    Local wall-clock times in `quiet.timezone`; a span may cross midnight ("22:00" to "07:00").
    Equal start and end means no quiet hours."""
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    start = time.fromisoformat(quiet.start)
    end = time.fromisoformat(quiet.end)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        quiet_now = start <= clock < end
        end_day = local.date()
    else:  # crosses midnight
        quiet_now = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not quiet_now:
        return None
    # fold=0 and zoneinfo's normalisation settle a wall time that a DST change skips or repeats
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


class AuthorLike(Protocol):
    """What X said about an author (worker.clients.x.XUser with details)."""

    @property
    def created_at(self) -> datetime | None: ...
    @property
    def followers_count(self) -> int | None: ...


def author_refusal(author: AuthorLike | None, conv: Conversation, now: datetime) -> str | None:
    """Why the author is below the operator's bar (None: they are not). An author X did not
    describe (no account, suspended, the fields missing) is not answered when a bar is set."""
    if conv.min_author_followers <= 0 and conv.min_author_account_age_days <= 0:
        return None
    if author is None:
        return "X did not describe the author (suspended or deleted?)"
    followers = author.followers_count
    if conv.min_author_followers > 0 and (
        followers is None or followers < conv.min_author_followers
    ):
        return (
            f"the author has {'unknown' if followers is None else followers} followers, fewer "
            f"than configs.conversation.min_author_followers ({conv.min_author_followers})"
        )
    if conv.min_author_account_age_days > 0:
        if author.created_at is None:
            return "X did not say when the author's account was made"
        age = (now - author.created_at).days
        if age < conv.min_author_account_age_days:
            return (
                f"the author's account is {age} days old, younger than "
                f"configs.conversation.min_author_account_age_days "
                f"({conv.min_author_account_age_days})"
            )
    return None
