"""Fuzz `configs` values: refused by the database with a `configs.<key>...` message, or accepted
and then applied by the worker's LiveConfig (pydantic-valid) or rejected by it with an alert while
the last good value stays in effect. Never another error, never a crash.

Documents are built from each key's pydantic model: every field gets plausible values, boundary
values, wrong types, nulls, nested junk, huge arrays and strings, documents nested thousands of
levels deep, unknown fields, and sometimes a document that is not an object at all.

Every example runs in one transaction that is rolled back. LiveConfig runs its real named SQL
(load_configs, raise_alert, resolve_alert) on that same connection through `TxDatabase`, with the
worker's own JSON loading (worker.db.configure_json), so the alert it raises is checked in the
table. `schedule` runs in the pg_cron database, where a change reschedules the cron jobs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import example, given
from psycopg.rows import dict_row
from pydantic import ValidationError

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import Deep, model_documents, to_json
from worker.config.live import LiveConfig
from worker.config.models import CONFIG_MODELS
from worker.db import UNLOADABLE_JSON_KEY, configure_json, query

pytestmark = pytest.mark.timeout(180)


class TxDatabase:
    """The slice of worker.db.Database LiveConfig uses, on the example's connection."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    async def fetch(self, name: str, params: Any = None) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(name), params)
            return cur.fetchall()

    async def execute(self, name: str, params: Any = None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(query(name), params)
            return cur.rowcount


# The test --------------------------------------------------------------------------------------
@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


STATS: Counter[str] = Counter()


def _check(conn: psycopg.Connection, live: LiveConfig, loop: asyncio.AbstractEventLoop, key: str,
           doc: Any) -> None:  # fmt: skip
    model = CONFIG_MODELS[key]
    loop.run_until_complete(live.reload())  # in step with the row as it is before the change
    before = live.get(model)
    row = conn.execute("select value from public.configs where key = %s", (key,)).fetchone()
    assert row is not None
    try:
        with conn.transaction():
            conn.execute(
                "update public.configs set value = %s::jsonb where key = %s", (to_json(doc), key)
            )
    except psycopg.Error as exc:
        state, message = exc.sqlstate, exc.diag.message_primary or ""
        if state == "54001":  # nested beyond Postgres's own stack: refused before any trigger
            assert "stack depth limit exceeded" in message
            STATS["refused: too deep for jsonb"] += 1
            return
        assert state == "22023" and message.startswith(f"configs.{key}"), (state, message)
        STATS["refused by the database"] += 1
        return

    stored = conn.execute("select value from public.configs where key = %s", (key,)).fetchone()
    assert stored is not None
    loop.run_until_complete(live.reload())
    alert = conn.execute(
        "select message from public.alerts where dedupe_key = %s and resolved_at is null",
        (f"config_rejected:{key}",),
    ).fetchone()
    if isinstance(stored[0], dict) and UNLOADABLE_JSON_KEY in stored[0]:
        STATS["too deep for Python's json: loaded as a refusable marker"] += 1
    try:
        parsed = model.model_validate(stored[0])
    except ValidationError:
        assert live.get(model) == before, "a rejected value replaced the last good one"
        assert key in live.rejected
        assert alert is not None and alert[0].startswith(
            f"configs.{key} rejected, last good value kept: "
        ), alert
        STATS["accepted by the database, rejected by the worker (alert)"] += 1
    else:
        assert live.get(model) == parsed
        assert key not in live.rejected and alert is None
        STATS["applied"] += 1


def _run(conn: psycopg.Connection, loop: asyncio.AbstractEventLoop, key: str) -> None:
    configure_json(conn)
    live = LiveConfig(TxDatabase(conn))  # type: ignore[arg-type]

    @FUZZ
    @given(doc=model_documents(CONFIG_MODELS[key]))
    @example(doc={"unknown_but_deep": Deep(3000, as_object=True)})
    @example(doc=[Deep(2000, as_object=False)])
    @example(doc={name: 7.0 for name in CONFIG_MODELS[key].model_fields if name.endswith("_days")})
    def fuzz(doc: Any) -> None:
        with conn.transaction(force_rollback=True):
            _check(conn, live, loop, key, doc)

    STATS.clear()
    fuzz()
    print(key, dict(STATS))
    # Every path must be exercised, or the fuzz proves little.
    assert STATS["applied"] >= 10, STATS
    assert STATS["refused by the database"] >= 10, STATS
    # (the database checks most fields itself: for some keys only a few get past it)
    assert STATS["accepted by the database, rejected by the worker (alert)"] >= 3, STATS


@pytest.mark.parametrize("key", [k for k in CONFIG_MODELS if k != "schedule"])
def test_fuzz_config_values(
    fuzz_conn: psycopg.Connection, loop: asyncio.AbstractEventLoop, key: str
) -> None:
    _run(fuzz_conn, loop, key)


def test_fuzz_schedule_config_with_pg_cron(
    cron_db: psycopg.Connection, loop: asyncio.AbstractEventLoop
) -> None:
    """`schedule` changes reschedule pg_cron in the same transaction: pg_cron's own refusals
    must surface as `configs.schedule...` too."""
    query = "select jobname, schedule, command from cron.job where jobname like 'chirpbase-%' order by 1"
    before = cron_db.execute(query).fetchall()
    _run(cron_db, loop, "schedule")
    assert len(before) >= 5
    assert (
        cron_db.execute(query).fetchall() == before
    )  # every example rolled back: schedules intact
