"""A scratch database of stand-in `jobs`/`configs` tables published to Realtime, and the gateway.

The Realtime stand-in's own tests and the worker's doorbell tests need the same setup: a small
database (not a migrated clone: the doorbell only needs rows to change) whose tables are in the
`supabase_realtime` publication, and the sandbox gateway serving Realtime from it, each with its
own temporary replication slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from aiohttp import web

from sandbox.gateway import create_gateway
from sandbox.realtime import REALTIME_STATE, RealtimeState
from tests import pg

FEED_READY_TIMEOUT = 5.0

TABLES = """
create table public.jobs (
  id bigint generated always as identity primary key,
  kind text,
  payload jsonb,
  status text default 'queued',
  run_at timestamptz default now()
);
create table public.configs (
  id bigint generated always as identity primary key,
  key text unique,
  value jsonb,
  updated_at timestamptz default now()
);
"""


@contextlib.contextmanager
def scratch_realtime_db(name: str, extra_sql: str = "") -> Iterator[str]:
    """Create `<name>_<pid>` with TABLES (+ `extra_sql`, run as `postgres`) and publish
    jobs/configs; dropped afterwards. `extra_sql` may publish more tables and seed rows."""
    db = f"{name}_{os.getpid()}"
    pg.start_cluster()
    pg.drop_database(db)
    pg.create_database(db)
    pg.bootstrap(db)
    with psycopg.connect(pg.admin_dsn(db), autocommit=True) as conn:
        conn.execute(
            "set role postgres;\n"
            + TABLES
            + "alter publication supabase_realtime add table public.jobs, public.configs;\n"
            + extra_sql
            + "\nreset role;"
        )
    try:
        yield db
    finally:
        pg.drop_database(db)


@contextlib.asynccontextmanager
async def serve_realtime(
    db: str, **realtime_options: Any
) -> AsyncIterator[tuple[str, RealtimeState]]:
    """The sandbox gateway (Realtime only) on a free port; yields its URL and Realtime state
    once the logical-decoding feed is ready."""
    app = create_gateway(pg.admin_dsn(db), storage=False, realtime_options=realtime_options)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state = app[REALTIME_STATE]
    try:
        await asyncio.wait_for(state.wait_feed_ready(), FEED_READY_TIMEOUT)
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", state
    finally:
        await runner.cleanup()
