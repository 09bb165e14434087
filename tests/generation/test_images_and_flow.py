"""Odd pictures from the image model still come out within X's limits; approval and the monthly
OpenAI budget steer what happens to a generated tweet."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from PIL import Image

import sandbox.openai_api.media
from sandbox.openai_api import RunningServer
from tests.generation.helpers import (
    jobs_for,
    open_alert,
    run_handler,
    running_worker,
    schedule,
    scheduled,
    set_config,
)
from tests.waiting import wait_for
from worker.jobs.registry import Snooze
from worker.runtime.services import Services
from worker.settings import Settings

X_IMAGE_MAX_BYTES = 5 * 1024 * 1024
TEXT = "Small, boring releases beat big, exciting ones: ship a little every day."


def _png(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


def huge_noisy_png() -> bytes:
    """3840x2160 of noise: a PNG far over X's 5 MB."""
    rng = random.Random(7)
    return _png(
        Image.frombytes("RGB", (3840, 2160), rng.randbytes(3840 * 2160 * 3)), compress_level=1
    )


def sixteen_bit_png() -> bytes:
    return _png(Image.linear_gradient("L").resize((1024, 1024)).convert("I;16"))


def palette_png_with_transparency() -> bytes:
    img = Image.new("P", (1024, 1024), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (256, 256, 768, 768))
    return _png(img, transparency=0)


def animated_png() -> bytes:
    frames = [Image.new("RGB", (1024, 1024), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def png_with_metadata() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "secret location 51.5N 0.1W")
    exif = Image.Exif()
    exif[0x010F] = "SandboxCam"
    return _png(Image.new("RGB", (1024, 1024), "teal"), pnginfo=info, exif=exif)


ODD_IMAGES = {
    "huge-noise": huge_noisy_png,
    "16-bit": sixteen_bit_png,
    "palette-transparent": palette_png_with_transparency,
    "animated": animated_png,
    "metadata": png_with_metadata,
}


@pytest.mark.parametrize("kind", list(ODD_IMAGES))
async def test_odd_image_from_the_model_comes_out_within_x_limits(
    kind: str,
    conn: psycopg.Connection,
    services: Services,
    openai_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = ODD_IMAGES[kind]()
    # The images endpoint (sandbox.openai_api.media) draws with the render_image it imported.
    monkeypatch.setattr(sandbox.openai_api.media, "render_image", lambda *a, **k: raw)
    openai_server.state.queue_chat(TEXT)
    row_id = schedule(conn, "shipping", with_image=True)

    result = await run_handler(services, row_id)

    assert isinstance(result, dict), result
    url = scheduled(conn, row_id)["image_url"]
    async with httpx.AsyncClient() as http:
        data = (await http.get(url)).content
    assert len(data) <= X_IMAGE_MAX_BYTES
    with Image.open(io.BytesIO(data)) as img:
        assert img.format in ("JPEG", "PNG")
        assert max(img.size) <= 2048
        assert img.mode in ("RGB", "RGBA")
        assert not getattr(img, "is_animated", False)
        assert not img.getexif() and "Comment" not in img.info
    if kind == "huge-noise":
        assert len(raw) > X_IMAGE_MAX_BYTES


async def test_unusable_image_is_drawn_again_from_the_models_prompt(
    conn: psycopg.Connection,
    services: Services,
    openai_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = sandbox.openai_api.render_image
    calls: list[str] = []

    def first_broken(prompt: str, *args: object, **kwargs: object) -> bytes:
        calls.append(prompt)
        if len(calls) == 1:
            return b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10
        return real(prompt, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sandbox.openai_api.media, "render_image", first_broken)
    openai_server.state.queue_chat(
        {"text": TEXT, "alt_text": "A paper boat on a calm river.", "image_prompt": "a paper boat"}
    )
    row_id = schedule(conn, "shipping", with_image=True)

    result = await run_handler(services, row_id)

    assert isinstance(result, dict), result
    assert calls[1] == "a paper boat"
    row = scheduled(conn, row_id)
    assert row["image_url"] and row["alt_text"] == "A paper boat on a calm river."


async def test_approval_flow(
    conn: psycopg.Connection, services: Services, openai_server: RunningServer
) -> None:
    set_config(conn, "generation", require_approval=True)
    openai_server.state.queue_chat(TEXT, "Write the test first; the bug report writes itself.")
    approve_id = schedule(conn, "shipping", with_image=True)
    reject_id = schedule(conn, "testing", with_image=True)

    assert isinstance(await run_handler(services, approve_id), dict)
    assert isinstance(await run_handler(services, reject_id), dict)

    # Waiting for a person, with everything they need to judge it.
    for row_id in (approve_id, reject_id):
        row = scheduled(conn, row_id)
        assert row["status"] == "awaiting_approval"
        assert row["content"] and row["image_url"] and row["alt_text"]
        assert jobs_for(conn, row_id, "post_tweet") == []

    conn.execute(
        "update public.scheduled_tweets set status = 'approved' where id = %s", (approve_id,)
    )
    [post] = jobs_for(conn, approve_id, "post_tweet")
    assert post["status"] == "queued" and post["dedupe_key"] == f"post_tweet:{approve_id}"
    approved = scheduled(conn, approve_id)
    assert approved["approved_at"] is not None and approved["job_id"] == post["id"]

    conn.execute(
        "update public.scheduled_tweets set status = 'rejected' where id = %s", (reject_id,)
    )
    assert scheduled(conn, reject_id)["status"] == "rejected"
    assert jobs_for(conn, reject_id, "post_tweet") == []
    with pytest.raises(psycopg.errors.CheckViolation, match="only a tweet awaiting approval"):
        conn.execute(
            "update public.scheduled_tweets set status = 'approved' where id = %s", (reject_id,)
        )
    assert jobs_for(conn, reject_id, "post_tweet") == []
    assert conn.execute("select count(*) from public.tweets").fetchone() == (0,)


async def test_budget_reached_snoozes_with_an_alert_and_a_raised_budget_resumes(
    conn: psycopg.Connection, settings: Settings, services: Services, openai_server: RunningServer
) -> None:
    set_config(conn, "quotas", openai_monthly_budget_usd=0.01)  # less than one image
    openai_server.state.queue_chat(TEXT)
    row_id = schedule(conn, "shipping", with_image=True)

    outcome = await run_handler(services, row_id)

    assert isinstance(outcome, Snooze), outcome
    assert outcome.until <= datetime.now(UTC) + timedelta(minutes=10, seconds=5)
    alert = open_alert(conn, "quota_cap:openai_usd")
    assert alert is not None and alert["level"] == "critical"
    row = scheduled(conn, row_id)
    assert row["status"] == "pending" and "OpenAI budget" in row["error"]
    assert openai_server.state.requests == []  # not one paid call was started
    assert conn.execute(
        "select coalesce(sum(used), 0) from public.quota_usage where resource = 'openai_usd'"
    ).fetchone() == (0,)

    # Through the worker: the snoozed job waits; raising the budget lets the next look succeed.
    conn.execute(
        "update public.jobs set status = 'queued', run_at = now() + interval '10 minutes'"
        " where kind = 'generate_tweet'"
    )
    async with running_worker(settings):
        await wait_for(lambda: scheduled(conn, row_id)["error"] is not None)
        set_config(conn, "quotas", openai_monthly_budget_usd=5)
        # The 10-minute re-check, brought forward.
        conn.execute("update public.jobs set run_at = now() where kind = 'generate_tweet'")
        row = await wait_for(
            lambda: (r := scheduled(conn, row_id))["content"] and r, timeout=15, message="generated"
        )
    assert row["status"] == "pending" and row["content"] == TEXT and row["error"] is None
    [generate] = jobs_for(conn, row_id, "generate_tweet")
    assert generate["status"] == "succeeded"


async def test_budget_snooze_through_the_worker_keeps_the_job_waiting(
    conn: psycopg.Connection, settings: Settings, openai_server: RunningServer
) -> None:
    set_config(conn, "quotas", openai_monthly_budget_usd=0)
    async with running_worker(settings):
        row_id = schedule(conn, "shipping")
        job = await wait_for(
            lambda: [j for j in jobs_for(conn, row_id, "generate_tweet") if j["last_error"]],
            message="snoozed job",
        )
    assert job[0]["status"] == "queued"
    assert "OpenAI budget" in job[0]["last_error"]
    assert job[0]["run_at"] > datetime.now(UTC) + timedelta(minutes=9)
    assert scheduled(conn, row_id)["status"] == "pending"
    assert open_alert(conn, "quota_cap:openai_usd") is not None
