"""Polls in X's answers: ``includes.polls`` matched to their posts (pure parsing, total).

A poll is not a primary object: it comes with the posts that carry it when the request asks for
the ``attachments.poll_ids`` expansion and ``poll.fields`` (x-api/fundamentals/data-dictionary.mdx
"Poll"; expansions.mdx): the post gets ``attachments.poll_ids``, the poll is in
``includes.polls`` with ``options`` (``position``, ``label``, ``votes``), ``duration_minutes``,
``end_datetime`` and ``voting_status`` ("open" or "closed").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# What a stats read asks for, beside the metrics: the poll of each post, with its results.
POLL_EXPANSION = "attachments.poll_ids"
POLL_FIELDS = ["duration_minutes", "end_datetime", "id", "options", "voting_status"]


@dataclass(frozen=True)
class PollOption:
    position: int
    label: str
    votes: int


@dataclass(frozen=True)
class PollResult:
    """One poll as the last read saw it."""

    id: str
    options: tuple[PollOption, ...]
    voting_status: str | None = None
    end_datetime: datetime | None = None
    duration_minutes: int | None = None

    @property
    def total_votes(self) -> int:
        return sum(o.votes for o in self.options)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"position": o.position, "label": o.label, "votes": o.votes} for o in self.options]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_poll(item: dict[str, Any]) -> PollResult | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    options = tuple(
        sorted(
            (
                PollOption(_int(o.get("position")), str(o.get("label", "")), _int(o.get("votes")))
                for o in item.get("options") or []
                if isinstance(o, dict)
            ),
            key=lambda o: o.position,
        )
    )
    duration = item.get("duration_minutes")
    status = item.get("voting_status")
    return PollResult(
        id=str(item["id"]),
        options=options,
        voting_status=status if isinstance(status, str) else None,
        end_datetime=_time(item.get("end_datetime")),
        duration_minutes=_int(duration) if duration is not None else None,
    )


def polls_by_post(body: dict[str, Any]) -> dict[str, PollResult]:
    """Post id -> its poll, for the posts of one answer (``data`` and ``includes.polls``)."""
    includes = body.get("includes") or {}
    polls = {p.id: p for p in (parse_poll(i) for i in includes.get("polls") or []) if p}
    data = body.get("data")
    posts = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    found: dict[str, PollResult] = {}
    for post in posts:
        if not isinstance(post, dict) or not post.get("id"):
            continue
        ids = (post.get("attachments") or {}).get("poll_ids") or []
        for poll_id in ids:
            if str(poll_id) in polls:
                found[str(post["id"])] = polls[str(poll_id)]
                break
    return found
