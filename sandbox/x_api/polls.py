"""Polls on the X stand-in: the ``poll`` of ``POST /2/tweets`` checked as X checks it, and
results that move while the poll is open.

Sources (xdevplatform/docs):

* ``openapi.json`` v2.167 ``CreatePostsPoll``: ``options`` (required) 2 to 4 strings of 1 to 25
  characters, ``duration_minutes`` (required) 5 to 10,080, optional ``reply_settings`` (enum
  ``following``, ``mentionedUsers``, ``subscribers``, ``verified``), ``additionalProperties:
  false``. JSON Schema counts a string's length in characters (code points).
* ``openapi.json`` v2.166 ``TweetCreateRequest.poll``: "mutually exclusive from Media, Quote
  Tweet Id, and Card URI".
* ``x-api/fundamentals/data-dictionary.mdx`` "Poll": a poll is expanded with
  ``expansions=attachments.poll_ids`` (the post then carries ``attachments.poll_ids``) and
  described by ``poll.fields``: ``id`` and ``options`` by default (each ``position``, ``label``,
  ``votes``), ``duration_minutes``, ``end_datetime`` (ISO 8601, milliseconds, ``Z``) and
  ``voting_status`` ("open" or "closed") on request, under ``includes.polls``.

Refusals answer X's 400 ``Invalid Request`` problem (the shape the stand-in uses for every
body error: ``errors[].parameters`` and ``message``, ``type .../problems/invalid-request``);
the messages follow the JSON-schema validator wording X's body errors carry (``$.path: ...``).

Votes: an open poll gains votes as the stand-in's clock runs (``votes_per_minute`` in all,
shared among the options by fixed weights drawn from the poll id, so a run is repeatable) plus
any cast by tests (:meth:`PollBook.vote`); a closed poll's counts no longer move.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MIN_OPTIONS, MAX_OPTIONS = 2, 4
MAX_OPTION_CHARS = 25
MIN_MINUTES, MAX_MINUTES = 5, 10_080
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
DEFAULT_FIELDS = ("id", "options")


def refusal(poll: Any, *, media: bool, quote: bool) -> dict[str, Any] | None:
    """X's error entry for a ``poll`` it would refuse, or None when it is acceptable."""

    def error(path: str, value: Any, message: str) -> dict[str, Any]:
        return {"parameters": {path: [str(value)]}, "message": f"$.{path}: {message}"}

    if not isinstance(poll, dict):
        return error("poll", poll, "object expected")
    extra = sorted(set(poll) - {"options", "duration_minutes", "reply_settings"})
    if extra:
        return error(
            f"poll.{extra[0]}",
            poll[extra[0]],
            "is not defined in the schema and the schema does not allow additional properties",
        )
    options = poll.get("options")
    if options is None:
        return error("poll.options", None, "is missing but it is required")
    if not isinstance(options, list):
        return error("poll.options", options, "array expected")
    if len(options) < MIN_OPTIONS:
        return error(
            "poll.options", options, f"there must be a minimum of {MIN_OPTIONS} items in the array"
        )
    if len(options) > MAX_OPTIONS:
        return error(
            "poll.options", options, f"there must be a maximum of {MAX_OPTIONS} items in the array"
        )
    for i, option in enumerate(options):
        if not isinstance(option, str):
            return error(f"poll.options[{i}]", option, "string expected")
        if len(option) < 1:
            return error(f"poll.options[{i}]", option, "must be at least 1 characters long")
        if len(option) > MAX_OPTION_CHARS:
            return error(
                f"poll.options[{i}]", option, f"may only be {MAX_OPTION_CHARS} characters long"
            )
    minutes = poll.get("duration_minutes")
    if minutes is None:
        return error("poll.duration_minutes", None, "is missing but it is required")
    if not isinstance(minutes, int) or isinstance(minutes, bool):
        return error("poll.duration_minutes", minutes, "integer expected")
    if minutes < MIN_MINUTES:
        return error(
            "poll.duration_minutes", minutes, f"must have a minimum value of {MIN_MINUTES}"
        )
    if minutes > MAX_MINUTES:
        return error(
            "poll.duration_minutes", minutes, f"must have a maximum value of {MAX_MINUTES}"
        )
    settings = poll.get("reply_settings")
    if settings is not None and settings not in REPLY_SETTINGS:
        return error(
            "poll.reply_settings",
            settings,
            f"does not have a value in the enumeration [{', '.join(REPLY_SETTINGS)}]",
        )
    if media or quote:
        other = "media" if media else "quote_tweet_id"
        return {
            "parameters": {"poll": ["poll"], other: [other]},
            "message": f"poll is mutually exclusive from {other}",
        }
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class Poll:
    id: str
    tweet_id: str
    labels: list[str]
    duration_minutes: int
    opened_at: float  # the stand-in's clock, epoch seconds
    weights: list[float]
    cast: list[int] = field(default_factory=list)  # votes cast by tests, per option

    @property
    def closes_at(self) -> float:
        return self.opened_at + self.duration_minutes * 60

    def votes(self, now: float, per_minute: float) -> list[int]:
        minutes = max(0.0, min(now, self.closes_at) - self.opened_at) / 60
        grown = [int(minutes * per_minute * w) for w in self.weights]
        return [g + c for g, c in zip(grown, self.cast, strict=True)]

    def to_json(self, fields: set[str], now: float, per_minute: float) -> dict[str, Any]:
        wanted = set(DEFAULT_FIELDS) | fields
        data: dict[str, Any] = {"id": self.id}
        if "options" in wanted:
            data["options"] = [
                {"position": i + 1, "label": label, "votes": votes}
                for i, (label, votes) in enumerate(
                    zip(self.labels, self.votes(now, per_minute), strict=True)
                )
            ]
        if "duration_minutes" in wanted:
            data["duration_minutes"] = self.duration_minutes
        if "end_datetime" in wanted:
            data["end_datetime"] = _iso(datetime.fromtimestamp(self.closes_at, UTC))
        if "voting_status" in wanted:
            data["voting_status"] = "open" if now < self.closes_at else "closed"
        return data


class PollBook:
    """Every poll the stand-in holds, by post id."""

    def __init__(
        self, clock: Callable[[], float], new_id: Callable[[], str], votes_per_minute: float = 30.0
    ) -> None:
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.RLock()
        self.votes_per_minute = votes_per_minute
        self.by_tweet: dict[str, Poll] = {}

    def create(self, tweet_id: str, options: list[str], duration_minutes: int) -> Poll:
        with self._lock:
            poll_id = self._new_id()
            digest = hashlib.sha256(poll_id.encode()).digest()
            raw = [1 + digest[i] for i in range(len(options))]
            weights = [r / sum(raw) for r in raw]
            poll = Poll(
                poll_id,
                tweet_id,
                list(options),
                duration_minutes,
                self._clock(),
                weights,
                [0] * len(options),
            )
            self.by_tweet[tweet_id] = poll
            return poll

    def get(self, tweet_id: str) -> Poll | None:
        return self.by_tweet.get(tweet_id)

    def vote(self, tweet_id: str, position: int, n: int = 1) -> None:
        """Cast ``n`` votes for option ``position`` (1-based); ignored once the poll closed."""
        with self._lock:
            poll = self.by_tweet[tweet_id]
            if self._clock() < poll.closes_at:
                poll.cast[position - 1] += n

    def render(self, tweet_id: str, fields: set[str]) -> dict[str, Any] | None:
        poll = self.by_tweet.get(tweet_id)
        if poll is None:
            return None
        with self._lock:
            return poll.to_json(fields, self._clock(), self.votes_per_minute)
