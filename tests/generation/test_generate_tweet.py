"""generate_tweet end to end: real OpenAI and Storage clients against the stand-ins, a real
database, the handler run with real Services or through the worker's claim loop."""

from __future__ import annotations

import io

import httpx
import psycopg
import pytest
from PIL import Image

from sandbox.openai_api import RunningServer
from tests.generation.conftest import StorageServer
from tests.generation.helpers import (
    jobs_for,
    run_handler,
    running_worker,
    schedule,
    scheduled,
    set_config,
)
from tests.waiting import wait_for
from worker.runtime.services import Services
from worker.settings import Settings

X_IMAGE_MAX_BYTES = 5 * 1024 * 1024
TEXT = "Index the columns you filter on, then read EXPLAIN: the planner says what it did."


def usage_by_endpoint(conn: psycopg.Connection) -> dict[str, tuple[int, int, int, int, float]]:
    rows = conn.execute(
        "select endpoint, calls, openai_input_tokens, openai_output_tokens, images,"
        " estimated_cost_usd::float8 from public.api_usage where endpoint like 'openai:%'"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def openai_spent(conn: psycopg.Connection) -> float:
    row = conn.execute(
        "select coalesce(sum(used), 0)::float8 from public.quota_usage where resource = 'openai_usd'"
    ).fetchone()
    assert row is not None
    return float(row[0])


async def test_text_and_image_are_generated_concurrently_and_stored(
    conn: psycopg.Connection,
    services: Services,
    openai_server: RunningServer,
    storage_server: StorageServer,
) -> None:
    state = openai_server.state
    # Warm up as a running worker is: clients connected, regexes compiled, pool filled.
    warm_id = schedule(conn, "warming up", with_image=True)
    assert isinstance(await run_handler(services, warm_id), dict)
    state.clear_requests()
    state.queue_chat(TEXT)
    state.set_latency(chat=0.3, images=0.6)
    row_id = schedule(conn, "Postgres indexes", with_image=True)

    result = await run_handler(services, row_id)

    assert isinstance(result, dict), result
    [chat] = state.requests_for("chat")
    [image_request] = state.requests_for("images")
    # The stand-in holds the text's answer for 0.3 s. Drawn one after the other, the image
    # would be asked for only once that answer arrived; asked for before, both ran at once.
    assert image_request.at < chat.at + 0.3, (chat.at, image_request.at)
    assert "Postgres indexes" in image_request.prompt_text
    assert "clean illustration" in image_request.prompt_text  # the configured style
    assert "Postgres indexes" in chat.prompt_text

    row = scheduled(conn, row_id)
    assert row["status"] == "pending" and row["content"] == TEXT
    assert row["generated_at"] is not None and row["error"] is None
    assert row["alt_text"] and row["image_path"]
    assert row["image_url"] == (
        f"{storage_server.url}/storage/v1/object/public/generated-images/{row['image_path']}"
    )
    [post] = jobs_for(conn, row_id, "post_tweet")
    assert post["status"] == "queued" and post["dedupe_key"] == f"post_tweet:{row_id}"
    assert result["post_job_id"] == post["id"] == row["job_id"]

    # The stored URL serves the image publicly, and it is one X accepts.
    async with httpx.AsyncClient() as http:
        response = await http.get(row["image_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] in ("image/jpeg", "image/png")
    data = response.content
    assert len(data) <= X_IMAGE_MAX_BYTES
    with Image.open(io.BytesIO(data)) as img:
        assert img.format in ("JPEG", "PNG")
        assert max(img.size) <= 2048
        img.verify()
    stored = conn.execute(
        "select metadata ->> 'mimetype' from storage.objects"
        " where bucket_id = 'generated-images' and name = %s",
        (row["image_path"],),
    ).fetchone()
    assert stored is not None and stored[0] == response.headers["content-type"]

    # Cost: each call recorded with its tokens and cost; the budget charged the same total.
    usage = usage_by_endpoint(conn)
    assert set(usage) == {"openai:chat", "openai:images", "openai:moderation"}
    calls, tokens_in, tokens_out, _images, chat_cost = usage["openai:chat"]
    assert calls == 2 and tokens_in > 0 and tokens_out > 0 and chat_cost > 0
    assert usage["openai:images"][3] == 2 and usage["openai:images"][4] > 0
    assert usage["openai:moderation"][0] == 2
    total = sum(u[4] for u in usage.values())
    assert openai_spent(conn) == pytest.approx(total, abs=1e-5)


async def test_topic_row_through_the_worker(
    conn: psycopg.Connection, settings: Settings, openai_server: RunningServer
) -> None:
    openai_server.state.queue_chat(TEXT)
    async with running_worker(settings):
        row_id = schedule(conn, "Postgres indexes", with_image=True)
        row = await wait_for(
            lambda: (r := scheduled(conn, row_id))["status"] == "pending" and r["content"] and r,
            timeout=15,
            message="generated row",
        )
        job = await wait_for(
            lambda: [
                j for j in jobs_for(conn, row_id, "generate_tweet") if j["status"] == "succeeded"
            ],
            message="generate job succeeded",
        )
    assert job[0]["attempts"] == 1
    assert row["content"] == TEXT and row["image_url"] and row["alt_text"]
    [post] = jobs_for(conn, row_id, "post_tweet")
    assert post["status"] == "queued"


async def test_text_only_row_draws_no_image(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    openai_server.state.queue_chat({"text": TEXT, "alt_text": "", "image_prompt": "a database"})
    row_id = schedule(conn, "Postgres indexes")
    result = await run_handler(services, row_id)
    assert isinstance(result, dict), result
    row = scheduled(conn, row_id)
    assert row["content"] == TEXT
    assert row["image_url"] is None and row["image_path"] is None and row["alt_text"] is None
    assert openai_server.state.requests_for("images") == []
    assert "no image" in openai_server.state.requests_for("chat")[0].prompt_text


async def test_generation_config_image_switch_adds_an_image(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    set_config(conn, "generation", image=True)
    row_id = schedule(conn, "Postgres indexes")
    assert isinstance(await run_handler(services, row_id), dict)
    assert scheduled(conn, row_id)["image_url"]
    assert len(openai_server.state.requests_for("images")) == 1


async def test_alt_text_can_be_switched_off(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    set_config(conn, "generation", alt_text=False)
    row_id = schedule(conn, "Postgres indexes", with_image=True)
    assert isinstance(await run_handler(services, row_id), dict)
    row = scheduled(conn, row_id)
    assert row["image_url"] and row["alt_text"] is None
