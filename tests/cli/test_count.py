"""The CLI counts tweet text with the worker's own function: `chirpbase count` and the
`schedule` notice and refusal show the count the worker checks before posting."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.cli.conftest import Cli
from tests.sql.helpers import scalar
from worker.content.tweet_text import measure
from worker.ops.cli import EXIT_OK, EXIT_USAGE

TEXTS = [
    "Shipping chirpbase today.",
    "see foo.jp and www.x.co.uk/path",  # bare country domains are links: 23 each
    "\U0001f426\u200d\U0001f525 " * 3,  # an emoji newer than twitter-text's data: 2 each
    "日本語のテキスト https://example.com/path。続き",
    "あ" * 125 + " example.com" + "い" * 10,  # 294: the database can only bound it from below
    "x" * 281,
]


@pytest.mark.parametrize("text", TEXTS)
def test_count_is_the_workers_count(cli: Cli, text: str) -> None:
    run = cli("count", text, "--json", database=False)
    data = json.loads(run.out)
    expected = measure(text.strip())
    assert data["weighted_length"] == expected.weighted_length
    assert data["accepted"] is (expected.weighted_length <= 280)
    assert run.code == (EXIT_OK if data["accepted"] else EXIT_USAGE)
    human = cli("count", text, database=False)
    assert human.out.startswith(f"{expected.weighted_length}/280 weighted characters")


def test_count_refuses_whitespace_alone(cli: Cli) -> None:
    run = cli("count", " \u00a0\n", database=False)
    assert run.code == EXIT_USAGE
    assert "empty or whitespace only" in run.out


def test_schedule_notice_shows_the_count(cli: Cli) -> None:
    run = cli("schedule", "see foo.jp \U0001f426\u200d\U0001f525")
    assert run.code == EXIT_OK, run
    assert "(job " in run.out and ": 30/280 weighted characters" in run.out
    assert json.loads(cli("schedule", "again foo.jp", "--json").out)["weighted_length"] == 29


def test_schedule_refuses_what_only_the_exact_count_catches(
    cli: Cli, conn: psycopg.Connection
) -> None:
    text = "あ" * 125 + " example.com" + "い" * 10
    # The database alone would take it (its count is a lower bound) ...
    assert scalar(conn, "select public.tweet_length_at_least(%s)", (text,)) <= 280
    run = cli("schedule", text)
    # ... the CLI refuses it with X's exact count, and nothing is inserted.
    assert run.code == EXIT_USAGE, run
    assert "not scheduled: tweet text is too long: weighted length 294 > 280" in run.err
    assert scalar(conn, "select count(*) from public.scheduled_tweets") == 0
