"""Each check (length, banned words, moderation, near-duplicate) makes the handler ask again
with feedback naming the failure, and gives up cleanly after generation.max_attempts drafts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from sandbox.openai_api import OpenAIState, RunningServer
from tests.generation.helpers import jobs_for, run_handler, schedule, scheduled, set_config
from worker.jobs.registry import GiveUp
from worker.runtime.services import Services

GOOD = "Read EXPLAIN ANALYZE before adding an index: measure first, then change one thing."
RECENT = "Vacuum your tables regularly to keep Postgres fast and healthy."


@dataclass(frozen=True)
class Case:
    check: str
    bad: str
    feedback: str  # what the next prompt must say about the failure
    arrange: Callable[[psycopg.Connection, OpenAIState], None]


def _long(conn: psycopg.Connection, state: OpenAIState) -> None:
    pass


def _banned(conn: psycopg.Connection, state: OpenAIState) -> None:
    set_config(conn, "generation", banned_words=["synergy", "to the moon"])


def _flagged(conn: psycopg.Connection, state: OpenAIState) -> None:
    state.flag_terms(["idiot"], category="harassment")


def _recent(conn: psycopg.Connection, state: OpenAIState) -> None:
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values ('1', %s, now())",
        (RECENT,),
    )


CASES = [
    Case("length", "Postgres " * 40, "characters as X counts them; the limit is 280", _long),
    Case("banned_words", "Pure SYNERGY: indexes and you.", 'banned words: "synergy"', _banned),
    Case("moderation", "Only an idiot skips backups.", "flagged it (harassment)", _flagged),
    Case(
        "near_duplicate",
        "Vacuum your tables regularly to keep Postgres fast & healthy!",
        "too close to a recent tweet",
        _recent,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.check for c in CASES])
async def test_failed_check_asks_again_with_feedback(
    case: Case, conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    case.arrange(conn, state)
    state.queue_chat(case.bad, GOOD)
    row_id = schedule(conn, "Postgres maintenance")

    result = await run_handler(services, row_id)

    assert isinstance(result, dict), result
    assert result["drafts"] == 2
    first, second = state.requests_for("chat")
    assert "rejected" not in first.prompt_text
    assert case.feedback in second.prompt_text
    assert case.bad.strip()[:40] in second.prompt_text  # the rejected draft is quoted
    row = scheduled(conn, row_id)
    assert row["status"] == "pending" and row["content"] == GOOD


@pytest.mark.parametrize("case", CASES, ids=[c.check for c in CASES])
async def test_gives_up_cleanly_after_max_attempts(
    case: Case, conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    case.arrange(conn, state)
    set_config(conn, "generation", max_attempts=3)
    state.queue_chat(case.bad, case.bad, case.bad, GOOD)
    row_id = schedule(conn, "Postgres maintenance", with_image=True)

    outcome = await run_handler(services, row_id)

    assert isinstance(outcome, GiveUp), outcome
    assert len(state.requests_for("chat")) == 3
    row = scheduled(conn, row_id)
    assert row["status"] == "failed"
    assert "no usable text after 3 draft(s)" in row["error"]
    assert case.check.replace("_", " ") in row["error"]
    assert row["content"] is None  # nothing half-made is kept, or posted
    assert jobs_for(conn, row_id, "post_tweet") == []
    assert str(outcome) == row["error"]


async def test_invalid_output_counts_as_a_draft(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    from sandbox.openai_api import RawContent

    openai_server.state.queue_chat(RawContent('{"text": "cut off'), GOOD)
    row_id = schedule(conn, "Postgres maintenance")
    result = await run_handler(services, row_id)
    assert isinstance(result, dict) and result["drafts"] == 2
    second = openai_server.state.requests_for("chat")[1]
    assert "not valid JSON for the schema" in second.prompt_text
    assert scheduled(conn, row_id)["content"] == GOOD


async def test_the_window_also_covers_drafts_not_posted_yet(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    """Two rows generated back to back must not say the same thing either."""
    state = openai_server.state
    state.queue_chat(GOOD, GOOD, RECENT)
    first = schedule(conn, "Postgres maintenance")
    assert isinstance(await run_handler(services, first), dict)
    second = schedule(conn, "Postgres maintenance")
    result = await run_handler(services, second)
    assert isinstance(result, dict) and result["drafts"] == 2
    assert GOOD in state.requests_for("chat")[1].prompt_text  # listed as a recent tweet
    assert "too close to a recent tweet" in state.requests_for("chat")[2].prompt_text
    assert scheduled(conn, second)["content"] == RECENT


async def test_checks_can_be_switched_off_by_config(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    _recent(conn, openai_server.state)
    set_config(conn, "generation", recent_window=0)
    openai_server.state.queue_chat(RECENT)
    row_id = schedule(conn, "Postgres maintenance")
    assert isinstance(await run_handler(services, row_id), dict)
    assert scheduled(conn, row_id)["content"] == RECENT
