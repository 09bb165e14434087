"""Fuzz the thread door against X's exact rules: a thread whose every part X accepts (the
worker's exact count, worker/content/tweet_text.py; not blank; no two alike; 2 to 25 parts) is
never refused by the database, whose length check is only a lower bound; and what the door
refuses names a real reason (a part X would refuse, the number of parts, or two equal parts).
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import EXAMPLES, FUZZ
from tests.fuzz.strategies import hostile_text
from worker.content.tweet_text import TweetTextError, validate_tweet_text

pytestmark = pytest.mark.timeout(120)

PART = st.one_of(
    hostile_text,
    st.integers(270, 290).map(lambda n: "a" * n),
    st.integers(135, 145).map(lambda n: "字" * n),
    st.just("https://example.com/" + "p" * 300),  # a URL counts 23, however long
)


def _x_accepts(part: str) -> bool:
    try:
        validate_tweet_text(part)
    except TweetTextError:
        return False
    return True


# A thread is up to 25 inserts: fewer examples than the single-row fuzz, the same profile.
@settings(FUZZ, max_examples=max(50, EXAMPLES // 3))
@given(parts=st.lists(PART, min_size=0, max_size=27))
@example(parts=["https://example.com/" + "p" * 300, "b"])
@example(parts=["a" * 280, "字" * 140])
def test_the_door_never_refuses_a_thread_x_accepts(
    fuzz_conn: psycopg.Connection, parts: list[str]
) -> None:
    trimmed = [p.strip() for p in parts]
    x_accepts = (
        2 <= len(trimmed) <= 25
        and all(t and _x_accepts(t) for t in trimmed)
        and len(set(trimmed)) == len(trimmed)
    )
    try:
        with fuzz_conn.transaction(force_rollback=True):
            row = fuzz_conn.execute(
                "insert into public.scheduled_tweets (thread) values (%s) returning thread",
                (parts,),
            ).fetchone()
            parts_made = fuzz_conn.execute(
                "select count(*) from public.scheduled_tweets where thread_of is not null"
            ).fetchone()
        refused = None
    except psycopg.errors.CheckViolation as exc:
        refused = exc.diag.message_primary or ""
    if x_accepts:
        assert refused is None, (parts, refused)
    if refused is None:
        assert row is not None and row[0] == trimmed
        assert parts_made == (len(trimmed),)
        return
    reasons = ("thread part", "a thread has 2 to 25 parts", "thread parts", "thread must be")
    assert any(r in refused for r in reasons), refused
    if "a thread has 2 to 25 parts" in refused:
        assert not 2 <= len(parts) <= 25
