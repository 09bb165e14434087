"""The poll door: scheduled_tweets refuses a poll X would refuse, each with a message naming the
rule (openapi.json CreatePostsPoll: 2-4 options of 1-25 characters, 5-10,080 minutes; v2.166:
poll, media and quote are mutually exclusive), and accepts the ones X accepts."""

from __future__ import annotations

import psycopg
import pytest

from tests.sql.helpers import scalar
from tests.sql.test_validation import _insert, _refused


@pytest.mark.parametrize(
    ("cols", "message"),
    [
        ({"poll_options": ["a"], "poll_duration_minutes": 60}, "a poll has 2 to 4 options .*got 1"),
        (
            {"poll_options": ["a", "b", "c", "d", "e"], "poll_duration_minutes": 60},
            "a poll has 2 to 4 options .*got 5",
        ),
        ({"poll_options": [], "poll_duration_minutes": 60}, "a poll has 2 to 4 options .*got 0"),
        (
            {"poll_options": ["yes", "x" * 26], "poll_duration_minutes": 60},
            r'poll option 2 \("x{26}"\) is 26 characters; X allows 25 per option',
        ),
        (
            {"poll_options": ["yes", "  ", "no"], "poll_duration_minutes": 60},
            "poll option 2 is empty",
        ),
        ({"poll_options": ["yes", None], "poll_duration_minutes": 60}, "poll option 2 is empty"),
        (
            {"poll_options": ["yes", "no"], "poll_duration_minutes": 4},
            "poll_duration_minutes is 4; X allows 5 to 10,080 minutes",
        ),
        (
            {"poll_options": ["yes", "no"], "poll_duration_minutes": 10081},
            "poll_duration_minutes is 10081; X allows 5 to 10,080 minutes",
        ),
        ({"poll_options": ["yes", "no"]}, "a poll needs a duration"),
        ({"poll_duration_minutes": 60}, "a poll needs its options"),
        (
            {"poll_options": [["a", "b"], ["c", "d"]], "poll_duration_minutes": 60},
            "poll_options must be a flat list",
        ),
        (
            {"poll_options": ["yes", "no"], "poll_duration_minutes": 60, "quote_tweet_id": "12"},
            "cannot quote a post",
        ),
    ],
)
def test_malformed_polls_are_refused_with_the_rule(
    shared_conn: psycopg.Connection, cols: dict, message: str
) -> None:
    _refused(shared_conn, message, content="Which one?", **cols)


def test_a_poll_with_an_image_is_refused(shared_conn: psycopg.Connection) -> None:
    _refused(
        shared_conn,
        "cannot carry an image",
        topic="cats",
        with_image=True,
        poll_options=["yes", "no"],
        poll_duration_minutes=60,
    )


def test_good_polls_are_accepted_trimmed(conn: psycopg.Connection) -> None:
    """At the bounds: 2 and 4 options, 25 characters (emoji and CJK count 1 each, not 2 as in
    post text), 5 and 10,080 minutes; options are trimmed like post text."""
    a = _insert(
        conn,
        content="Tabs or spaces?",
        poll_options=[" tabs ", "spaces\n"],
        poll_duration_minutes=5,
    )
    b = _insert(
        conn,
        content="Pick one",
        poll_options=["😀" * 25, "字" * 25, "x" * 25, "d"],
        poll_duration_minutes=10080,
    )
    c = _insert(
        conn, topic="a question about Postgres", poll_options=["a", "b"], poll_duration_minutes=1440
    )
    assert conn.execute(
        "select poll_options from public.scheduled_tweets where id = %s", (a,)
    ).fetchone() == (["tabs", "spaces"],)
    assert (
        scalar(
            conn,
            "select cardinality(poll_options) from public.scheduled_tweets where id = %s",
            (b,),
        )
        == 4
    )
    kinds = conn.execute(
        "select j.kind from public.scheduled_tweets s join public.jobs j on j.id = s.job_id"
        " where s.id = any(%s) order by s.id",
        ([a, b, c],),
    ).fetchall()
    assert kinds == [("post_tweet",), ("post_tweet",), ("generate_tweet",)]


def test_an_image_cannot_be_added_to_a_poll_later(conn: psycopg.Connection) -> None:
    row = _insert(conn, content="Vote", poll_options=["a", "b"], poll_duration_minutes=60)
    with pytest.raises(psycopg.errors.CheckViolation, match="cannot carry an image"):
        conn.execute(
            "update public.scheduled_tweets set image_path = 'x.png' where id = %s", (row,)
        )
    with pytest.raises(psycopg.errors.CheckViolation, match="got 1"):
        conn.execute(
            "update public.scheduled_tweets set poll_options = '{a}' where id = %s", (row,)
        )


def test_the_poll_of_a_posted_post_cannot_change(conn: psycopg.Connection) -> None:
    row = _insert(conn, content="Vote", poll_options=["a", "b"], poll_duration_minutes=60)
    conn.execute("update public.scheduled_tweets set status = 'posting' where id = %s", (row,))
    with pytest.raises(psycopg.errors.CheckViolation, match="cannot change"):
        conn.execute(
            "update public.scheduled_tweets set poll_duration_minutes = 90 where id = %s", (row,)
        )
