"""Small helpers shared by the SQL tests (tests against the real local Postgres)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = [
    "Jsonb",
    "claim",
    "enqueue",
    "expire_lease",
    "job",
    "open_alerts",
    "scalar",
    "set_config",
    "token",
]


def scalar(conn: psycopg.Connection, sql: str, params: Any = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


def enqueue(conn: psycopg.Connection, kind: str = "noop", payload: Any = None, **kw: Any) -> int:
    """enqueue_job with named arguments; returns the job id."""
    args = {"kind": kind, "payload": Jsonb(payload if payload is not None else {}), **kw}
    names = ", ".join(f"{k} => %({k})s" for k in args)
    return int(scalar(conn, f"select public.enqueue_job({names})", args))


def claim(
    conn: psycopg.Connection,
    worker: str = "w1",
    kinds: tuple[str, ...] = ("noop",),
    max_jobs: int = 1,
    lease: str = "60 seconds",
) -> list[dict[str, Any]]:
    """claim_jobs; the claimed rows as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select * from public.claim_jobs(%s, %s, %s, %s::interval)",
            (worker, list(kinds), max_jobs, lease),
        )
        return cur.fetchall()


def token(conn: psycopg.Connection, job_id: int) -> int:
    """The job's current fencing token (a fresh one when it is not claimed: a token no claim
    has, which every function must refuse)."""
    current = scalar(conn, "select lease_token from public.jobs where id = %s", (job_id,))
    return current if isinstance(current, int) else unused_token(conn)


def unused_token(conn: psycopg.Connection) -> int:
    """A fencing token no claim holds: drawn from the tokens' own sequence, so never issued."""
    return int(scalar(conn, "select nextval('public.jobs_lease_token_seq')"))


def job(conn: psycopg.Connection, job_id: int) -> dict[str, Any]:
    """One row of public.jobs as a dict."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from public.jobs where id = %s", (job_id,))
        row = cur.fetchone()
    assert row is not None, f"job {job_id} not found"
    return row


def expire_lease(conn: psycopg.Connection, job_id: int) -> None:
    """Make a running job's lease lapse (the table owner may write locked_until directly)."""
    conn.execute(
        "update public.jobs set locked_until = now() - interval '1 second' where id = %s", (job_id,)
    )


def open_alerts(conn: psycopg.Connection, kind: str | None = None) -> list[dict[str, Any]]:
    """Unresolved alerts, optionally of one kind, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "select * from public.alerts where resolved_at is null"
            " and (%(kind)s::text is null or kind = %(kind)s) order by id",
            {"kind": kind},
        )
        return cur.fetchall()


def set_config(conn: psycopg.Connection, key: str, patch: dict[str, Any]) -> None:
    """Merge `patch` into configs.<key> (inserting the row when absent)."""
    conn.execute(
        "insert into public.configs (key, value) values (%(k)s, %(v)s)"
        " on conflict (key) do update set value = public.configs.value || excluded.value",
        {"k": key, "v": Jsonb(patch)},
    )
