"""The worker's own poll check (worker/content/polls.py) agrees with the database door on every
case the SQL tests refuse or accept, and X's poll shapes parse whatever X leaves out."""

from __future__ import annotations

import pytest

from worker.clients.x.polls import parse_poll, polls_by_post
from worker.content.polls import Poll, PollError, poll_from_row


@pytest.mark.parametrize(
    ("options", "minutes", "kwargs", "message"),
    [
        (["a"], 60, {}, "2 to 4 options .*got 1"),
        (["a", "b", "c", "d", "e"], 60, {}, "got 5"),
        (["ok", "x" * 26], 60, {}, r'poll option 2 \("x{26}"\) is 26 characters'),
        (["ok", " "], 60, {}, "poll option 2 is empty"),
        (["ok", None], 60, {}, "poll option 2 is empty"),
        (["a", "b"], 4, {}, "poll_duration_minutes is 4"),
        (["a", "b"], 10081, {}, "poll_duration_minutes is 10081"),
        (["a", "b"], None, {}, "needs a duration"),
        (None, 60, {}, "needs its options"),
        (["a", "b"], 60, {"has_media": True}, "cannot carry an image"),
        (["a", "b"], 60, {"quotes": True}, "cannot quote"),
    ],
)
def test_refused(options: list | None, minutes: int | None, kwargs: dict, message: str) -> None:
    with pytest.raises(PollError, match=message):
        poll_from_row(options, minutes, **kwargs)


def test_accepted_at_the_bounds() -> None:
    assert poll_from_row(None, None) is None
    poll = poll_from_row([" 😀" * 1 + "😀" * 24, "b"], 10080)
    assert poll == Poll(("😀" * 25, "b"), 10080)
    assert poll.body() == {"options": ["😀" * 25, "b"], "duration_minutes": 10080}
    assert poll_from_row(list("abcd"), 5) == Poll(("a", "b", "c", "d"), 5)


def test_x_poll_shapes() -> None:
    body = {
        "data": [
            {"id": "1", "attachments": {"poll_ids": ["p1"]}},
            {"id": "2"},
            {"id": "3", "attachments": {"poll_ids": ["missing"]}},
        ],
        "includes": {
            "polls": [
                {
                    "id": "p1",
                    "options": [
                        {"position": 2, "label": "b", "votes": 5},
                        {"position": 1, "label": "a", "votes": "7"},
                    ],
                    "voting_status": "closed",
                    "end_datetime": "2019-11-28T20:26:41.000Z",
                    "duration_minutes": 1440,
                },
                {"no": "id"},
            ]
        },
    }
    polls = polls_by_post(body)
    assert list(polls) == ["1"]
    poll = polls["1"]
    assert [(o.position, o.label, o.votes) for o in poll.options] == [(1, "a", 7), (2, "b", 5)]
    assert poll.total_votes == 12 and poll.voting_status == "closed"
    assert poll.end_datetime is not None and poll.end_datetime.year == 2019
    bare = parse_poll({"id": "p2", "options": [{"label": "x"}]})  # default fields only
    assert bare is not None
    assert (bare.voting_status, bare.end_datetime, bare.duration_minutes) == (None, None, None)
    assert polls_by_post({"data": {"id": "9"}}) == {}
