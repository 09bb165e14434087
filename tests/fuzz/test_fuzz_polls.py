"""Fuzz the three homes of X's poll rules against each other: the database door (SQL
`poll_refusal` through a real insert), the worker's check (worker/content/polls.py) and the X
stand-in's schema check (sandbox/x_api/polls.py).

For random option lists (0 to 6 options of random text: emoji, CJK, whitespace of every kind,
lengths around 25) and durations around the bounds: the door and the worker agree exactly
(accept, or refuse with the same rule), and what the door accepts, trimmed as the door stores
it, the stand-in accepts too. The door is stricter in one documented way only: an option that
is blank once trimmed (X's minLength 1 lets a lone space through).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sandbox.x_api import polls as standin
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import CHARS
from worker.content.polls import PollError, poll_from_row

pytestmark = pytest.mark.timeout(120)

SPACES = " \t\n\u00a0\u2007\u202f\u3000\u0085"
OPTION = st.one_of(
    st.text(CHARS, max_size=30),
    st.text(st.sampled_from("ab😀字é" + SPACES), min_size=0, max_size=28),
    st.integers(20, 30).map(lambda n: "x" * n),
    st.integers(20, 30).map(lambda n: "😀" * n),
    st.just(" "),
)
DURATION = st.one_of(
    st.none(), st.integers(-5, 12), st.integers(10070, 10090), st.integers(0, 20000)
)


def _door(conn: psycopg.Connection, options: list[str] | None, minutes: int | None) -> Any:
    """The stored (trimmed) options, or the door's refusal message."""
    try:
        with conn.transaction(force_rollback=True):
            row = conn.execute(
                "insert into public.scheduled_tweets (content, poll_options, poll_duration_minutes)"
                " values ('Which one?', %s, %s) returning poll_options",
                (options, minutes),
            ).fetchone()
            assert row is not None
            return ("accepted", row[0])
    except psycopg.errors.CheckViolation as exc:
        return ("refused", exc.diag.message_primary)


@FUZZ
@given(options=st.one_of(st.none(), st.lists(OPTION, max_size=6)), minutes=DURATION)
@example(options=["a", " "], minutes=60)
@example(options=["😀" * 25, "b"], minutes=10080)
@example(options=["a", "b"], minutes=4)
def test_door_worker_and_x_agree(
    fuzz_conn: psycopg.Connection, options: list[str] | None, minutes: int | None
) -> None:
    outcome, detail = _door(fuzz_conn, options, minutes)
    try:
        poll = poll_from_row(options, minutes)
        worker = ("accepted", poll)
    except PollError as exc:
        worker = ("refused", str(exc))
    assert outcome == worker[0], (options, minutes, detail, worker)
    if outcome == "refused":
        # The same rule named by both (the first words of the message: "poll option 2 ...",
        # "a poll has 2 to 4 options ...", "poll_duration_minutes is ...").
        rule = str(worker[1]).split(" is ")[0].split(";")[0][:16]
        assert rule in detail, (detail, worker[1])
        return
    stored = detail
    poll = worker[1]
    if poll is None:
        assert stored is None
        return
    assert list(poll.options) == stored  # trimmed alike
    assert (
        standin.refusal({"options": stored, "duration_minutes": minutes}, media=False, quote=False)
        is None
    )
