"""Fixtures for the alert tests: SQL helpers and a stand-in for the worker the monitor watches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import Jsonb
from worker.alerts.monitor import AlertMonitor
from worker.alerts.policy import AlertPolicy
from worker.config.live import LiveConfig
from worker.db import Database

FAST = AlertPolicy(
    check_interval_s=0.05,
    failure_threshold=3,
    failure_window_s=600,
    doorbell_grace_s=5,
    database_grace_s=5,
    stale_after_s=300,
    webhook_poll_s=0.05,
    webhook_timeout_s=5,
    retry_initial_s=0.05,
    retry_max_s=0.2,
    lease_s=30,
)


def alerts(conn: psycopg.Connection, key: str) -> list[dict[str, Any]]:
    """Every alert row for a dedupe_key, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select * from public.alerts where dedupe_key = %s order by id", (key,))
        return cur.fetchall()


def open_alert(conn: psycopg.Connection, key: str) -> dict[str, Any] | None:
    rows = [a for a in alerts(conn, key) if a["resolved_at"] is None]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def raise_alert(
    conn: psycopg.Connection,
    key: str,
    *,
    kind: str | None = None,
    level: str = "warning",
    message: str = "something is wrong",
    details: dict[str, Any] | None = None,
) -> int:
    row = conn.execute(
        "select public.raise_alert(%s, %s, %s, %s, %s)",
        (level, kind or key.partition(":")[0], key, message, Jsonb(details or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def evaluate(conn: psycopg.Connection, threshold: int = 3, window: str = "10 minutes") -> set:
    """evaluate_alerts(); the (action, dedupe_key) pairs it reported."""
    rows = conn.execute(
        "select action, dedupe_key from public.evaluate_alerts(%s, %s::interval)",
        (threshold, window),
    ).fetchall()
    return {(a, k) for a, k in rows}


@dataclass
class FakeDoorbell:
    connected: bool = False
    down_since: float | None = field(default_factory=time.monotonic)


@dataclass
class FakeWorker:
    """What AlertMonitor reads from a Worker."""

    db: Database
    config: LiveConfig
    worker_id: str = "worker-test-1"
    db_up: bool = True
    db_down_since: float | None = None
    doorbell: Any = None


@pytest.fixture
async def fake_worker(database: Database) -> FakeWorker:
    config = LiveConfig(database)
    await config.reload()
    return FakeWorker(database, config)


@pytest.fixture
def monitor(fake_worker: FakeWorker) -> AlertMonitor:
    return AlertMonitor(fake_worker, FAST)
