"""Fuzz `insert into scheduled_tweets`: accepted with a matching job, or refused clearly.

Every example inserts one row with random `content`, `topic`, `with_image`, `scheduled_for` and
`status` (left out, null, the right type, or text cast to the column type: the way a SQL client
sends the wrong type), inside a transaction rolled back afterwards. An oracle written from the
documented rules predicts the outcome; the test checks the database agrees, that a refusal is
one of the documented messages (SQLSTATE and message prefix), that an accepted row has exactly
one matching job, and that no job is ever left without its row.

Weighted length: the database's `tweet_length_at_least` is a lower bound of X's count, used to
refuse at the door only what is certainly over 280; the worker applies X's exact rules
(`worker.content.tweet_text`) before it calls X. On every accepted text the two are compared: the
database's count is never above X's (so the door never refuses a text X takes), and a text the
door accepts but X would refuse is refused by the worker before any API call (the row ends
`failed` with the reason); the test checks that too. Whitespace alone is refused at the door
(X refuses it, though twitter-text's parseTweet calls it valid). Trimming (Python's whitespace
set) and the characters X refuses (U+FEFF, U+FFFE, U+FFFF) agree exactly between the two.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from psycopg import sql

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import CHARS, hostile_text, text_with_nul
from worker.content.tweet_text import TweetTextError, validate_tweet_text, weighted_length

pytestmark = pytest.mark.timeout(120)

OMIT: Any = type("Omit", (), {"__repr__": lambda self: "OMIT"})()


@dataclass(frozen=True)
class Cast:
    """A value sent as text and cast to the column's type by the statement."""

    text: str


# The documented refusals, as (SQLSTATE, message prefix).
NEITHER = (
    "23514",
    "scheduled_tweets: give either content (exact text to post) or topic (to generate), not neither",
)
BOTH = ("23514", "scheduled_tweets: give either content or topic, not both")
BAD_CHAR = ("23514", "scheduled_tweets: content contains a character X refuses")
TOO_LONG = ("23514", "scheduled_tweets: content is at least {} weighted characters; X allows 280")
BLANK = ("23514", "scheduled_tweets: content is empty or whitespace only, which X refuses")
TOPIC_LONG = ("23514", "scheduled_tweets: topic is {} characters; keep it under 500")
PAST = ("23514", "scheduled_tweets: scheduled_for ", "is more than a day in the past")
FUTURE = ("23514", "scheduled_tweets: scheduled_for ", "is more than a year ahead")
STATUS = ("23514", "scheduled_tweets: new rows start as pending, not ")
NO_IMAGE_FLAG = ("23502", 'null value in column "with_image"')

# What a cast of text to boolean/timestamptz may answer (class 22: data exception).
CAST_ERRORS = (
    ("22P02", "invalid input syntax for type boolean"),
    ("22007", "invalid input syntax for type timestamp with time zone"),
    ("22008", "date/time field value out of range"),
    ("22008", "timestamp out of range"),
    ("22009", "time zone displacement out of range"),
    ("22023", "time zone "),  # 'time zone "mars/olympus" not recognized'
)

BAD_CHARS = re.compile("[\ufeff\ufffe\uffff]")

BOOL_TEXTS = ["true", "false", "t", "f", "yes", "no", "on", "off", "1", "0", " true ", "TRUE",
              "maybe", "", "2", "truee", "nul", "\u00a0true"]  # fmt: skip
TIME_TEXTS = [
    "now", "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity", "allballs",
    "2026-02-30", "2026-13-01", "2026-01-01 25:00", "10000-01-01", "294277-01-01",
    "4714-11-24 00:00:00+00 BC", "2026-06-01 12:00 Mars/Olympus", "2026-06-01T12:00:00+25:00",
    "2026-06-01T12:00:00+14:00", "2099-12-31", "1999-01-01", "", " ", "garbage", "1e10",
    "2026-11-25 13:00:00.123456789",
]  # fmt: skip
STATUSES = ["pending", "generating", "awaiting_approval", "approved", "posting", "posted",
            "failed", "cancelled", "rejected", "PENDING", " pending", "pending\n", ""]  # fmt: skip


def _aware(delta: timedelta) -> datetime:
    return datetime.now(UTC) + delta


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A choice between strategies with integer weights."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


content_field = weighted((3, st.just(OMIT)), (1, st.none()), (10, hostile_text), (1, text_with_nul))
topic_field = weighted((10, st.just(OMIT)), (1, st.none()), (4, hostile_text))
with_image_field = weighted(
    (4, st.just(OMIT)),
    (1, st.none()),
    (3, st.booleans()),
    (2, st.builds(Cast, st.one_of(st.sampled_from(BOOL_TEXTS), st.text(CHARS, max_size=6)))),
)
scheduled_for_field = weighted(
    (4, st.just(OMIT)),
    (1, st.none()),
    (
        4,
        st.builds(
            _aware, st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=800))
        ),
    ),
    (1, st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))),
    (
        1,
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.sampled_from([UTC]) | st.timezones(),
        ),
    ),
    (2, st.builds(Cast, st.one_of(st.sampled_from(TIME_TEXTS), st.text(CHARS, max_size=12)))),
)
status_field = weighted(
    (12, st.just(OMIT)),
    (1, st.none()),
    (2, st.sampled_from(STATUSES)),
    (1, st.text(CHARS, max_size=10)),
)
CASTS = {"with_image": "boolean", "scheduled_for": "timestamptz"}
# Not scheduled_for itself: a time Python cannot hold (infinity, year 10000+) must fail the test
# through the assertions, not through the driver.
RETURNING = "id, content, topic, with_image, status, job_id"


def _placeholder(column: str, value: Any) -> tuple[sql.Composable, Any]:
    if isinstance(value, Cast):
        return sql.SQL("%s::text::{}").format(sql.SQL(CASTS[column])), value.text
    if column in CASTS and value is not None:
        return sql.SQL("%s::{}").format(sql.SQL(CASTS[column])), value
    return sql.SQL("%s::text") if column in ("content", "topic", "status") else sql.SQL("%s"), value


def _insert(values: dict[str, Any]) -> tuple[sql.Composed | sql.SQL, list[Any]]:
    given_ = {k: v for k, v in values.items() if v is not OMIT}
    if not given_:
        return sql.SQL(
            f"insert into public.scheduled_tweets default values returning {RETURNING}"
        ), []
    parts = [_placeholder(k, v) for k, v in given_.items()]
    statement = sql.SQL(
        "insert into public.scheduled_tweets ({}) values ({}) returning " + RETURNING
    ).format(
        sql.SQL(", ").join(sql.Identifier(k) for k in given_),
        sql.SQL(", ").join(p for p, _ in parts),
    )
    return statement, [param for _, param in parts]


def _sqlstate(exc: psycopg.Error) -> tuple[str, str]:
    return exc.sqlstate or "", exc.diag.message_primary or ""


def _assert_cast_error(exc: psycopg.Error, what: str) -> None:
    state, message = _sqlstate(exc)
    assert any(state == s and message.startswith(p) for s, p in CAST_ERRORS), (
        f"unexpected error casting {what}: {state} {message}"
    )


class Oracle:
    """Predicts the trigger's verdict from the documented rules (evaluated in the same tx)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def _eval(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | psycopg.Error:
        try:
            with self.conn.transaction():
                row = self.conn.execute(query, params).fetchone()
                assert row is not None
                return tuple(row)
        except psycopg.Error as exc:
            return exc

    def with_image(self, value: Any) -> bool | psycopg.Error | None:
        if value is OMIT:
            return False
        if isinstance(value, Cast):
            got = self._eval("select %s::text::boolean", (value.text,))
            return got if isinstance(got, psycopg.Error) else got[0]
        return value  # type: ignore[no-any-return,unused-ignore]

    def schedule(self, value: Any) -> tuple[bool, bool] | psycopg.Error:
        """(more than a day in the past, more than a year ahead), never loading the value."""
        if value is OMIT or value is None:
            return (False, False)
        expr = "%s::text::timestamptz" if isinstance(value, Cast) else "%s::timestamptz"
        param = value.text if isinstance(value, Cast) else value
        got = self._eval(
            f"select v < now() - interval '1 day', v > now() + interval '1 year'"
            f" from (select {expr} as v) s",
            (param,),
        )
        return got if isinstance(got, psycopg.Error) else (bool(got[0]), bool(got[1]))

    def db_length(self, text: str) -> int:
        row = self.conn.execute("select public.tweet_length_at_least(%s)", (text,)).fetchone()
        assert row is not None
        return int(row[0])


def _trimmed(value: Any) -> str | None:
    if value is OMIT or value is None:
        return None
    return value.strip() or None  # type: ignore[no-any-return,unused-ignore]


STATS: Counter[str] = Counter()


def _check_one(conn: psycopg.Connection, values: dict[str, Any]) -> None:
    oracle = Oracle(conn)
    jobs_before = conn.execute("select count(*) from public.jobs").fetchone()
    statement, params = _insert(values)

    texts = [v for v in values.values() if isinstance(v, str)] + [
        v.text for v in values.values() if isinstance(v, Cast)
    ]
    if any("\x00" in t for t in texts):
        # Postgres text cannot hold NUL; the driver refuses before anything is sent.
        with pytest.raises(psycopg.DataError, match="NUL"):
            conn.execute(statement, params)
        STATS["refused: NUL"] += 1
        return

    # Casts first: a text that is not a boolean/time fails the statement with a class-22 error.
    image = oracle.with_image(values["with_image"])
    when = oracle.schedule(values["scheduled_for"])
    cast_errors = [e for e in (image, when) if isinstance(e, psycopg.Error)]
    for e in cast_errors:
        _assert_cast_error(e, repr(values))

    content, topic = _trimmed(values["content"]), _trimmed(values["topic"])
    status = "pending" if values["status"] is OMIT else values["status"]
    db_len = oracle.db_length(content) if content is not None else None
    expected: tuple[str, ...] | None = None
    if cast_errors:
        expected = None  # checked against the cast errors below
    elif content is None and topic is None and values["content"] not in (OMIT, None):
        expected = BLANK
    elif content is None and topic is None:
        expected = NEITHER
    elif content is not None and topic is not None:
        expected = BOTH
    elif content is not None and BAD_CHARS.search(content):
        expected = BAD_CHAR
    elif db_len is not None and db_len > 280:
        expected = (TOO_LONG[0], TOO_LONG[1].format(db_len))
    elif topic is not None and len(topic) > 500:
        expected = (TOPIC_LONG[0], TOPIC_LONG[1].format(len(topic)))
    elif isinstance(when, tuple) and when[0]:
        expected = PAST
    elif isinstance(when, tuple) and when[1]:
        expected = FUTURE
    elif status != "pending":
        expected = STATUS
    elif image is None:
        expected = NO_IMAGE_FLAG

    try:
        with conn.transaction():
            cur = conn.execute(statement, params)
            cols = [c.name for c in cur.description or []]
            fetched = cur.fetchone()
            assert fetched is not None
            row = dict(zip(cols, fetched, strict=True))
    except psycopg.Error as exc:
        state, message = _sqlstate(exc)
        if cast_errors:
            assert any(_sqlstate(e) == (state, message) for e in cast_errors), (state, message)
            STATS[f"refused: cast {state}"] += 1
        else:
            assert expected is not None, f"refused a row the rules accept: {state} {message}"
            assert state == expected[0] and message.startswith(expected[1]), (
                f"expected {expected}, got {state} {message!r}"
            )
            assert len(expected) < 3 or expected[2] in message, (expected, message)
            STATS["refused: " + re.sub(r"\d+", "N", expected[1])[18:60]] += 1
        # A refused insert leaves nothing behind: no row, no job.
        assert conn.execute("select count(*) from public.jobs").fetchone() == jobs_before
        return

    assert not cast_errors and expected is None, f"accepted a row the rules refuse: {expected}"
    STATS["accepted"] += 1
    assert row["content"] == content and row["topic"] == topic
    assert row["status"] == "pending" and row["with_image"] is image
    assert row["job_id"] is not None
    job = conn.execute(
        "select j.kind, j.payload, j.status, j.run_at = s.scheduled_for, j.dedupe_key, j.max_attempts"
        " from public.jobs j, public.scheduled_tweets s where j.id = s.job_id and s.id = %s",
        (row["id"],),
    ).fetchone()
    kind = "post_tweet" if content is not None else "generate_tweet"
    assert job is not None
    assert job[:5] == (
        kind,
        {"scheduled_tweet_id": row["id"]},
        "queued",
        True,
        f"{kind}:{row['id']}",
    )
    orphans = conn.execute(
        "select count(*) from public.jobs j where j.payload ? 'scheduled_tweet_id' and not exists"
        " (select 1 from public.scheduled_tweets s"
        "  where s.id = (j.payload ->> 'scheduled_tweet_id')::bigint)"
    ).fetchone()
    assert orphans == (0,)

    if content is not None:
        assert db_len is not None
        _cross_check_length(content, db_len)


def _cross_check_length(content: str, db_len: int) -> None:
    x_len = weighted_length(content)
    assert db_len <= x_len, f"the door counts higher than X: db {db_len}, X {x_len}: {content!r}"
    STATS["length: equal" if db_len == x_len else "length: door below X"] += 1
    if x_len > 280 or not content.strip():
        # Accepted by the door's bound, refused by the worker before any API call.
        with pytest.raises(TweetTextError):
            validate_tweet_text(content)
        STATS["accepted by the db, refused by the worker"] += 1
    else:
        validate_tweet_text(content)


@FUZZ
@given(
    content=content_field,
    topic=topic_field,
    with_image=with_image_field,
    scheduled_for=scheduled_for_field,
    status=status_field,
)
@example(content="hello", topic=OMIT, with_image=OMIT, scheduled_for=OMIT, status=OMIT)
@example(content="\u00a0\u2007", topic=OMIT, with_image=OMIT, scheduled_for=OMIT, status=OMIT)
@example(content="ok", topic=OMIT, with_image=OMIT, scheduled_for=Cast("infinity"), status=OMIT)
@example(content="ok", topic=OMIT, with_image=OMIT, scheduled_for=Cast("-infinity"), status=OMIT)
@example(content="ok\ufeff", topic=OMIT, with_image=OMIT, scheduled_for=OMIT, status=OMIT)
@example(content="a\x00b", topic=OMIT, with_image=OMIT, scheduled_for=OMIT, status=OMIT)
@example(content=OMIT, topic="\u6f22" * 501, with_image=None, scheduled_for=OMIT, status=OMIT)
def _fuzz_insert(fuzz_conn: psycopg.Connection, **values: Any) -> None:
    with fuzz_conn.transaction(force_rollback=True):
        _check_one(fuzz_conn, values)


def test_fuzz_scheduled_tweets_insert(fuzz_conn: psycopg.Connection) -> None:
    STATS.clear()
    _fuzz_insert(fuzz_conn)
    print(dict(STATS))
    # The examples must reach both sides of every interesting rule, or the fuzz proves little.
    assert STATS["accepted"] >= 50, STATS
    assert sum(n for k, n in STATS.items() if k.startswith("refused")) >= 100, STATS
    assert STATS["refused: NUL"] >= 1 and STATS["length: equal"] >= 20, STATS


def test_nul_inside_sql_is_refused_cleanly(fuzz_conn: psycopg.Connection) -> None:
    """NUL built server-side (chr(0)) is refused by Postgres itself, with nothing stored."""
    with fuzz_conn.transaction(force_rollback=True):
        before = fuzz_conn.execute("select count(*) from public.jobs").fetchone()
        with (
            pytest.raises(
                psycopg.errors.ProgramLimitExceeded, match="null character not permitted"
            ),
            fuzz_conn.transaction(),
        ):
            fuzz_conn.execute(
                "insert into public.scheduled_tweets (content) values ('a' || chr(0) || 'b')"
            )
        assert fuzz_conn.execute("select count(*) from public.jobs").fetchone() == before
