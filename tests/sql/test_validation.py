"""Bad rows are refused at the door with a clear message: scheduled_tweets and configs."""

from __future__ import annotations

import psycopg
import pytest

from tests.sql.helpers import Jsonb, scalar

URL = "https://example.com/a/really/long/path/that/x/shortens/to/twenty-three?q=" + "z" * 60

# scheduled_tweets -------------------------------------------------------------------------------


def _insert(conn: psycopg.Connection, **cols: object) -> int:
    if not cols:
        return int(scalar(conn, "insert into public.scheduled_tweets default values returning id"))
    names = ", ".join(cols)
    values = ", ".join(f"%({c})s" for c in cols)
    sql = f"insert into public.scheduled_tweets ({names}) values ({values}) returning id"
    return int(scalar(conn, sql, cols))


def _counts(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute(
        "select (select count(*) from public.scheduled_tweets), (select count(*) from public.jobs)"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def _refused(conn: psycopg.Connection, match: str, **cols: object) -> str:
    before = _counts(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match=match) as exc:
        _insert(conn, **cols)
    assert _counts(conn) == before  # nothing inserted, no job created
    return str(exc.value)


@pytest.mark.parametrize(
    "cols",
    [
        {},
        {"content": None, "topic": None},
        {"topic": "  "},
        {"topic": "\n"},
    ],
)
def test_neither_content_nor_topic_is_refused(shared_conn: psycopg.Connection, cols: dict) -> None:
    _refused(shared_conn, "give either content .* or topic .*, not neither", **cols)


@pytest.mark.parametrize(
    "cols",
    [
        {"content": ""},
        {"content": "   \n\t "},
        {"content": "\u00a0\u2009"},  # no-break and thin spaces are whitespace too
        {"content": "\u3000\n", "topic": " \t"},
    ],
)
def test_blank_content_is_refused(shared_conn: psycopg.Connection, cols: dict) -> None:
    """X refuses a post of whitespace alone (twitter-text's parseTweet calls it valid)."""
    _refused(shared_conn, "content is empty or whitespace only, which X refuses", **cols)


def test_both_content_and_topic_is_refused(shared_conn: psycopg.Connection) -> None:
    _refused(shared_conn, "give either content or topic, not both", content="hi", topic="greetings")


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("a" * 281, 281),
        ("字" * 141, 282),  # CJK counts 2
        ("😀" * 141, 282),  # emoji count 2
        ("👨‍👩‍👧" * 141, 282),  # a ZWJ sequence is one emoji
        ("x" * 257 + " " + URL, 281),  # any URL counts 23
        ("é" * 200 + "日本" * 21, 284),
    ],
    ids=["latin", "cjk", "emoji", "zwj", "url", "mixed"],
)
def test_over_long_content_is_refused(
    shared_conn: psycopg.Connection, text: str, weighted: int
) -> None:
    assert scalar(shared_conn, "select public.tweet_length_at_least(%s)", (text,)) == weighted
    message = _refused(shared_conn, "X allows 280", content=text)
    assert f"content is at least {weighted} weighted characters" in message
    assert "URLs count 23" in message  # the hint explains the counting
    assert "chirpbase count" in message  # ... and where to get the exact count


@pytest.mark.parametrize(
    "text",
    [
        "a" * 280,
        "字" * 140,
        "😀" * 140,
        "🇫🇷" * 140,  # flag pairs
        "👍🏽" * 140,  # skin-tone modifiers
        "x" * 256 + " " + URL,  # 256 + 1 + 23 although the raw text is far longer
        "e\u0301" * 280,  # NFC: e + combining acute is one character
        "  " + "b" * 280 + "  \n",  # surrounding whitespace is trimmed
    ],
    ids=["latin", "cjk", "emoji", "flags", "skin-tone", "url", "nfc", "trimmed"],
)
def test_exactly_280_weighted_characters_pass(shared_conn: psycopg.Connection, text: str) -> None:
    assert scalar(shared_conn, "select public.tweet_length_at_least(%s)", (text.strip(),)) == 280
    new_id = _insert(shared_conn, content=text)
    content, job_id = shared_conn.execute(
        "select content, job_id from public.scheduled_tweets where id = %s", (new_id,)
    ).fetchone()
    assert content == text.strip() and job_id is not None


def test_lower_bound_is_exact_on_everyday_text(shared_conn: psycopg.Connection) -> None:
    """Where a text holds only plain words and plain links, the bound is X's count."""
    cases = {
        "": 0,
        "hello": 5,
        "Hello. World, again!": 20,
        "see example.com now": 4 + 23 + 4,
        "http://a.co/x and https://b.io": 23 + 5 + 23,
        "(www.example.co.uk/path).": 2 + 23 + 1,
        "café": 4,
        "…": 2,
        "—": 1,
        "こんにちは": 10,
        "🎉 launch": 2 + 7,
        "👨‍👩‍👧‍👦 🇯🇵 👍🏽 #️⃣ ❤️": 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2,
        "a\u200db \u20e3 a\ufe0f": 3 + 1 + 2 + 1 + 3,  # emoji parts alone count as characters
    }
    got = {
        text: scalar(shared_conn, "select public.tweet_length_at_least(%s)", (text,))
        for text in cases
    }
    assert got == cases


def test_a_long_topic_is_refused(shared_conn: psycopg.Connection) -> None:
    _refused(shared_conn, "topic is 501 characters", topic="t" * 501)


def test_a_time_more_than_a_day_in_the_past_is_refused(shared_conn: psycopg.Connection) -> None:
    past = scalar(shared_conn, "select now() - interval '25 hours'")
    message = _refused(
        shared_conn, "more than a day in the past", content="late", scheduled_for=past
    )
    assert "Omit scheduled_for to post now" in message
    # A little in the past is fine: it posts now.
    recent = scalar(shared_conn, "select now() - interval '23 hours'")
    assert _insert(shared_conn, content="slightly late", scheduled_for=recent)


def test_new_rows_must_start_pending(shared_conn: psycopg.Connection) -> None:
    _refused(
        shared_conn, "new rows start as pending, not posted", content="sneaky", status="posted"
    )
    _refused(shared_conn, "new rows start as pending, not postd", content="typo", status="postd")


# configs ----------------------------------------------------------------------------------------


def _set(conn: psycopg.Connection, key: str, value: object) -> None:
    conn.execute(
        "insert into public.configs (key, value) values (%s, %s)"
        " on conflict (key) do update set value = excluded.value",
        (key, Jsonb(value)),
    )


def _patch(conn: psycopg.Connection, key: str, patch: dict) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = %s", (Jsonb(patch), key)
    )


@pytest.mark.parametrize(
    ("key", "patch", "message"),
    [
        (
            "schedule",
            {"generate_cron": "bad"},
            'configs.schedule.generate_cron must be a cron expression with 5 fields .* got "bad"',
        ),
        (
            "schedule",
            {"generate_cron": 9},
            "configs.schedule.generate_cron must be a string, got number",
        ),
        ("schedule", {"enabled": "true"}, "configs.schedule.enabled must be a boolean, got string"),
        (
            "schedule",
            {"job_retention_days": 0},
            "configs.schedule.job_retention_days must be between 1 and 3650, got 0",
        ),
        (
            "quotas",
            {"plan": "gold"},
            "configs.quotas.plan must be the X access tier: pay_per_use, basic, pro or "
            'enterprise, got "gold"',
        ),
        ("quotas", {"alert_threshold": 1.5}, "configs.quotas.alert_threshold must be between"),
        (
            "quotas",
            {"monthly_post_cap": "lots"},
            "configs.quotas.monthly_post_cap must be a number",
        ),
        (
            "engagement",
            {"auto_like": "yes"},
            "configs.engagement.auto_like must be a boolean, got string",
        ),
        (
            "engagement",
            {"skip_authors": "bob"},
            "configs.engagement.skip_authors must be a array, got string",
        ),
        ("persona", {"topics": "postgres"}, "configs.persona.topics must be a array, got string"),
        (
            "generation",
            {"similarity_threshold": 2},
            "configs.generation.similarity_threshold must be between 0 and 1, got 2",
        ),
        (
            "alerts",
            {"webhook_url": "ftp://example.com"},
            "configs.alerts.webhook_url must be an http\\(s\\) URL",
        ),
    ],
)
def test_config_of_the_wrong_shape_is_refused(
    shared_conn: psycopg.Connection, key: str, patch: dict, message: str
) -> None:
    before = scalar(shared_conn, "select value from public.configs where key = %s", (key,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        _patch(shared_conn, key, patch)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        _set(shared_conn, key, {**before, **patch})
    assert scalar(shared_conn, "select value from public.configs where key = %s", (key,)) == before


@pytest.mark.parametrize(
    ("value", "typ"), [([1, 2], "array"), ("on", "string"), (3, "number"), (None, "null")]
)
def test_a_known_key_needs_an_object(
    shared_conn: psycopg.Connection, value: object, typ: str
) -> None:
    with pytest.raises(
        psycopg.errors.InvalidParameterValue,
        match=f"configs.engagement must be a JSON object, got {typ}",
    ):
        _set(shared_conn, "engagement", value)


def test_valid_changes_and_unknown_keys_are_accepted(conn: psycopg.Connection) -> None:
    _patch(conn, "schedule", {"generate_cron": "*/30 8-20 * * 1-5"})
    _patch(conn, "quotas", {"plan": "basic", "monthly_post_cap": None})
    _patch(conn, "engagement", {"auto_like": False, "skip_authors": ["a"]})
    _patch(conn, "alerts", {"webhook_url": "https://hooks.example.com/x"})
    _set(conn, "my_experiment", ["anything", {"goes": True}])
    _set(conn, "notes", "free text")
    assert scalar(conn, "select value from public.configs where key = 'notes'") == "free text"
    updated = scalar(
        conn,
        "select updated_at > created from public.configs,"
        " (select min(updated_at) - interval '1 microsecond' as created from public.configs) c"
        " where key = 'schedule'",
    )
    assert updated is True
