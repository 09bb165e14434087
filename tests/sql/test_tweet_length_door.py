"""The database door's count (`tweet_length_at_least`) never exceeds X's.

X's count is the worker's (`worker.content.tweet_text`, itself checked against twitter-text in
tests/tweet_text). The door may count lower, never higher: so it refuses no text X accepts, on
the whole boundary corpus, on every emoji sequence X knows and on every top-level domain. The
texts it lets through although X refuses them are caught by the worker before any call to X
(tests/e2e/test_tweet_length_door.py).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.tweet_text.corpus import Case, boundary_corpus, exact_length
from worker.content.tweet_text import (
    country_code_tlds,
    generic_tlds,
    known_emoji_sequences,
    weighted_length,
)

_BOUNDS: dict[str, int] = {}  # the function is immutable: one answer per text per run


def lower_bounds(conn: psycopg.Connection, texts: list[str]) -> list[int]:
    """The door's count of each text (one query for the batch)."""
    missing = list(dict.fromkeys(t for t in texts if t not in _BOUNDS))
    if missing:
        rows = conn.execute(
            "select public.tweet_length_at_least(t) from unnest(%s::text[]) with ordinality u(t, o)"
            " order by o",
            (missing,),
        ).fetchall()
        _BOUNDS.update(zip(missing, (int(row[0]) for row in rows), strict=True))
    return [_BOUNDS[t] for t in texts]


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return boundary_corpus()


def test_the_door_counts_no_corpus_text_higher_than_x(
    shared_conn: psycopg.Connection, corpus: list[Case]
) -> None:
    texts = [case.text.strip() for case in corpus]  # what the trigger stores and the worker posts
    bounds = lower_bounds(shared_conn, texts)
    exact = [exact_length(text) for text in texts]
    above = [
        (case.name, bound, count)
        for case, bound, count in zip(corpus, bounds, exact, strict=True)
        if bound > count
    ]
    assert not above, f"{len(above)} texts counted higher than X counts them: {above[:5]}"
    # A bound that is a bound and no more: exact on most texts, and it does refuse.
    assert sum(b == e for b, e in zip(bounds, exact, strict=True)) > len(corpus) // 2
    assert sum(b > 280 for b in bounds) > 500


def test_the_door_accepts_every_corpus_text_x_accepts(
    shared_conn: psycopg.Connection, corpus: list[Case]
) -> None:
    accepted = [case.text for case in corpus if case.x_valid]
    assert len(accepted) > 2000
    with shared_conn.transaction(force_rollback=True), shared_conn.cursor() as cur:
        cur.executemany(
            "insert into public.scheduled_tweets (content) values (%s)", [(t,) for t in accepted]
        )
        inserted = shared_conn.execute("select count(*) from public.scheduled_tweets").fetchone()
    assert inserted == (len(accepted),)


def test_every_emoji_sequence_x_knows_takes_at_most_2(shared_conn: psycopg.Connection) -> None:
    sequences = sorted(known_emoji_sequences())
    assert len(sequences) > 2500
    bounds = lower_bounds(shared_conn, sequences)
    over = [(s, b) for s, b in zip(sequences, bounds, strict=True) if not 1 <= b <= 2]
    assert not over, over[:5]


def test_no_top_level_domain_makes_the_door_count_higher(shared_conn: psycopg.Connection) -> None:
    texts = []
    for tld in sorted(generic_tlds() | country_code_tlds()):
        texts += [
            f"x.{tld}",
            f"https://日本語.{tld}/p",
            f"日本語x.{tld}日本語",
            f"テスト https://example.{tld}日本語日本語日本語",
            f"ạạ.{tld}/ạạạạạạạạạạạạạạạạạạạạạạạạạạạạ",
        ]
    bounds = lower_bounds(shared_conn, texts)
    above = [
        (t, b, weighted_length(t))
        for t, b in zip(texts, bounds, strict=True)
        if b > weighted_length(t)
    ]
    assert not above, above[:5]


def test_refusal_names_the_bound_and_where_the_exact_count_is(
    shared_conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        shared_conn.execute(
            "insert into public.scheduled_tweets (content) values (%s)", ("字" * 141,)
        )
    diag = refused.value.diag
    assert diag.message_primary == (
        "scheduled_tweets: content is at least 282 weighted characters; X allows 280"
    )
    assert diag.message_hint is not None and "chirpbase count TEXT" in diag.message_hint


def test_very_long_text_is_bounded_without_reading_it_through(
    shared_conn: psycopg.Connection,
) -> None:
    # 60,000 code points: past any text X takes (12 URLs of 4,096 and change), refused at once.
    huge = "https://example.com/" + "a" * 59_980
    with shared_conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("select public.tweet_length_at_least(%s) as n", (huge,)).fetchone()
    assert row is not None and 280 < row["n"] <= weighted_length(huge)
