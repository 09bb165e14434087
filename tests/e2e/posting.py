"""Helpers the posting end-to-end tests share: rows, jobs, quotas, a stored image."""

from __future__ import annotations

import io
from typing import Any

import psycopg
from PIL import Image, ImageDraw
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from worker.clients.storage import ImageStore
from worker.content.images import fit_for_x


def one(conn: psycopg.Connection, sql: str, *params: Any) -> dict[str, Any]:
    """The single row `sql` returns (the test fails when there is none)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None, sql
    return row


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()  # type: ignore[arg-type]


def schedule(conn: psycopg.Connection, content: str) -> int:
    """A scheduled_tweets row with exact text, due now (its trigger enqueues post_tweet)."""
    return int(
        one(
            conn, "insert into public.scheduled_tweets (content) values (%s) returning id", content
        )["id"]
    )


def row_of(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    return one(conn, "select * from public.scheduled_tweets where id = %s", row_id)


def job_of(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    """The row's current job."""
    return one(
        conn,
        "select j.* from public.jobs j join public.scheduled_tweets s on s.job_id = j.id"
        " where s.id = %s",
        row_id,
    )


def quota_used(
    conn: psycopg.Connection, resource: str = "posts", *, month: str | None = None
) -> float:
    """This resource's use, all months together or for `month` (an SQL date expression)."""
    where = f" and month = {month}" if month else ""
    return float(
        one(
            conn,
            "select coalesce(sum(used), 0) as n from public.quota_usage"
            f" where resource = %s{where}",
            resource,
        )["n"]
    )


def due_now(admin_dsn: str, job_id: int) -> None:
    """Skip a job's wait (backoff, snooze): it runs at the next claim."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("update public.jobs set run_at = now() where id = %s", (job_id,))


def png(width: int = 640, height: int = 360) -> bytes:
    image = Image.new("RGB", (width, height), (30, 90, 160))
    ImageDraw.Draw(image).ellipse((40, 40, 320, 320), fill=(250, 200, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def stored_image(stack: SandboxStack, settings: Any) -> tuple[str, str]:
    """A picture fitted for X and uploaded to the Storage stand-in: (path, public URL)."""
    fitted = fit_for_x(png(320, 200))
    store = ImageStore.from_settings(settings)
    try:
        return fitted.filename, await store.upload_image(fitted)
    finally:
        await store.aclose()
