"""Polls as X accepts them, checked before any call (pure code, no I/O).

X's rules (openapi.json in xdevplatform/docs): v2.167 ``CreatePostsPoll`` takes ``options``, 2 to
4 strings of 1 to 25 characters, and ``duration_minutes``, 5 to 10,080; v2.166
``TweetCreateRequest.poll`` is "mutually exclusive from Media, Quote Tweet Id, and Card URI".
An option's length is JSON Schema's ``maxLength``: characters (code points), so an emoji or a
CJK character counts 1, unlike twitter-text's weighted post length. The database door applies
the same rules (SQL ``poll_refusal``); this is the worker's own check, so a row that reached it
some other way is refused before X is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_OPTIONS = 2
MAX_OPTIONS = 4
MAX_OPTION_CHARS = 25
MIN_DURATION_MINUTES = 5
MAX_DURATION_MINUTES = 10_080  # 7 days


class PollError(ValueError):
    """A poll X would refuse; the message names the rule."""


@dataclass(frozen=True)
class Poll:
    options: tuple[str, ...]
    duration_minutes: int

    def body(self) -> dict[str, object]:
        """The ``poll`` object of ``POST /2/tweets`` (tweepy's ``create_tweet(poll_options=...,
        poll_duration_minutes=...)`` sends the same)."""
        return {"options": list(self.options), "duration_minutes": self.duration_minutes}


def poll_from_row(
    options: Sequence[str | None] | None,
    duration_minutes: int | None,
    *,
    has_media: bool = False,
    quotes: bool = False,
) -> Poll | None:
    """The row's poll, validated as X validates it; None when the row has no poll."""
    if options is None and duration_minutes is None:
        return None
    if options is None:
        raise PollError("a poll needs its options: poll_duration_minutes is set but not options")
    if duration_minutes is None:
        raise PollError("a poll needs a duration (5 to 10,080 minutes)")
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise PollError(f"a poll has 2 to 4 options (X's rule); got {len(options)}")
    cleaned: list[str] = []
    for position, option in enumerate(options, start=1):
        text = (option or "").strip()
        if not text:
            raise PollError(f"poll option {position} is empty")
        if len(text) > MAX_OPTION_CHARS:
            raise PollError(
                f'poll option {position} ("{text[:40]}") is {len(text)} characters;'
                f" X allows {MAX_OPTION_CHARS} per option"
            )
        cleaned.append(text)
    if not MIN_DURATION_MINUTES <= duration_minutes <= MAX_DURATION_MINUTES:
        raise PollError(
            f"poll_duration_minutes is {duration_minutes}; X allows 5 to 10,080 minutes (7 days)"
        )
    if has_media:
        raise PollError("a post with a poll cannot carry an image (X: mutually exclusive)")
    if quotes:
        raise PollError("a post with a poll cannot quote a post (X: mutually exclusive)")
    return Poll(tuple(cleaned), duration_minutes)
