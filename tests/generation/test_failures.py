"""Failures: refusals fail the row, transient OpenAI errors retry the job, the last attempt fails
the row, cancellation wins, and nothing half-made is ever left for posting."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg

from sandbox.openai_api import RunningServer
from tests.generation.helpers import (
    jobs_for,
    open_alert,
    run_handler,
    schedule,
    scheduled,
)
from tests.waiting import wait_for
from worker.jobs.registry import GiveUp, RetryLater, Snooze
from worker.runtime.services import Services

TEXT = "Small, boring releases beat big, exciting ones: ship a little every day."


def storage_objects(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from storage.objects").fetchone()
    assert row is not None
    return int(row[0])


async def test_refusal_fails_the_row_and_stops_the_image(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    state.refuse_next(1, "I can't help with that.")
    state.set_latency(images=0.5)
    row_id = schedule(conn, "something awkward", with_image=True)

    outcome = await run_handler(services, row_id)

    assert isinstance(outcome, GiveUp), outcome
    row = scheduled(conn, row_id)
    assert row["status"] == "failed"
    assert row["error"] == "OpenAI refused to write it: I can't help with that."
    assert row["content"] is None and row["image_url"] is None
    assert jobs_for(conn, row_id, "post_tweet") == []
    assert len(state.requests_for("chat")) == 1  # a refusal is final, not retried
    # The image call in flight was abandoned: nothing was uploaded.
    assert storage_objects(conn) == 0


async def test_rate_limit_then_success(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    state.inject_fault("rate_limit", 1, endpoint="chat", retry_after=0.1)
    state.queue_chat(TEXT)
    row_id = schedule(conn, "shipping")

    result = await run_handler(services, row_id)

    assert isinstance(result, dict), result
    statuses = [r.status for r in state.requests_for("chat")]
    assert statuses == [429, 200]
    assert scheduled(conn, row_id)["content"] == TEXT


async def test_persistent_rate_limit_retries_the_job_later(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    state.inject_fault("rate_limit", 10, endpoint="chat", retry_after=0.05)
    row_id = schedule(conn, "shipping", with_image=True)

    outcome = await run_handler(services, row_id, attempts=1, max_attempts=4)

    assert isinstance(outcome, RetryLater), outcome
    row = scheduled(conn, row_id)
    assert row["status"] == "pending" and row["content"] is None
    assert row["error"].startswith("will retry: OpenAI chat.completions failed with HTTP 429")
    # No reservation is kept for calls that were never billed... and the image's was refunded
    # or charged at its real cost, never both.
    recorded = conn.execute(
        "select coalesce(sum(estimated_cost_usd), 0)::float8 from public.api_usage"
    ).fetchone()
    assert recorded is not None
    # ...in the OpenAI budget and in the overall one (quotas.monthly_budget_usd) alike.
    for resource in ("openai_usd", "spend_usd"):
        spent = conn.execute(
            "select coalesce(sum(used), 0)::float8 from public.quota_usage where resource = %s",
            (resource,),
        ).fetchone()
        assert spent is not None
        assert abs(spent[0] - recorded[0]) < 1e-5, resource


async def test_last_attempt_fails_the_row(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    openai_server.state.inject_fault("overloaded", 10, retry_after=0.05)
    row_id = schedule(conn, "shipping")

    outcome = await run_handler(services, row_id, attempts=4, max_attempts=4)

    assert isinstance(outcome, GiveUp), outcome
    row = scheduled(conn, row_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("gave up after 4 attempts: OpenAI chat.completions failed")
    assert jobs_for(conn, row_id, "post_tweet") == []


async def test_openai_out_of_credit_alerts_and_waits(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    openai_server.state.inject_fault("quota", 1, endpoint="chat")
    row_id = schedule(conn, "shipping")

    outcome = await run_handler(services, row_id)

    assert isinstance(outcome, Snooze), outcome
    assert open_alert(conn, "openai_quota_exhausted") is not None
    row = scheduled(conn, row_id)
    assert row["status"] == "pending" and row["error"] == "OpenAI account out of credit"


async def test_unknown_model_fails_with_a_config_hint(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    conn.execute(
        'update public.configs set value = value || \'{"text_model": "gpt-3.5-turbo"}\''
        " where key = 'generation'"
    )
    row_id = schedule(conn, "shipping")
    outcome = await run_handler(services, row_id)
    assert isinstance(outcome, GiveUp), outcome
    error = scheduled(conn, row_id)["error"]
    assert "configs.generation" in error and "gpt-3.5-turbo" in error


async def test_cancelled_before_the_job_runs_is_left_alone(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    row_id = schedule(conn, "shipping")
    # The trigger cancels the queued job; a job that was already claimed finds the row cancelled.
    claimed = await services.queue.claim(["generate_tweet"], 1, timedelta(seconds=30))
    assert claimed
    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (row_id,))
    conn.execute("update public.jobs set status = 'queued' where id = %s", (claimed[0].id,))

    result = await run_handler(services, row_id)

    assert result == {"skipped": "cancelled"}
    assert openai_server.state.requests == []


async def test_cancelled_while_generating_wins(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    state = openai_server.state
    state.set_latency(chat=0.5)
    state.queue_chat(TEXT)
    row_id = schedule(conn, "shipping")

    handler = asyncio.create_task(run_handler(services, row_id))
    await wait_for(lambda: scheduled(conn, row_id)["status"] == "generating")
    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (row_id,))
    result = await handler

    assert isinstance(result, dict) and "skipped" in result, result
    row = scheduled(conn, row_id)
    assert row["status"] == "cancelled" and row["content"] is None
    assert jobs_for(conn, row_id, "post_tweet") == []


async def test_rerun_after_an_unrecorded_success_only_ensures_the_post(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    openai_server.state.queue_chat(TEXT)
    row_id = schedule(conn, "shipping")
    assert isinstance(await run_handler(services, row_id), dict)
    [post] = jobs_for(conn, row_id, "post_tweet")
    # The worker died before recording success: the job runs again.
    conn.execute(
        "update public.jobs set status = 'queued' where kind = 'generate_tweet'"
        " and (payload ->> 'scheduled_tweet_id')::bigint = %s",
        (row_id,),
    )
    result = await run_handler(services, row_id)
    assert result == {"already_generated": True, "post_job_id": post["id"]}
    assert len(openai_server.state.requests_for("chat")) == 1
    assert len(jobs_for(conn, row_id, "post_tweet")) == 1
