"""The database is unavailable for 60 s under a running worker process.

The private cluster (never the shared one) is stopped for a full minute. The worker must stay
up as the same process, say so on `/health` (503 once the outage outlasts HEALTH_GRACE_S), and
pick everything up again when the database returns: jobs enqueued before the outage (including
one running when it began and some due during it) and jobs enqueued right after it all succeed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import psycopg
import pytest

from sandbox.stack import SandboxStack, ThreadedSandbox
from tests.chaos.cluster import PrivateCluster
from tests.processes import WorkerProcess
from tests.waiting import wait_for_sync

OUTAGE_S = float(os.environ.get("CHAOS_OUTAGE_S", "60"))
GRACE_S = 10.0
LEASE_S = 10


@pytest.fixture
def outage_db(ensure_up: PrivateCluster) -> Iterator[str]:
    name = ensure_up.create_database("chirpbase_outage")
    yield name


def log_messages(output: str) -> list[str]:
    """The messages of a worker's JSON log lines (each line holds the text twice)."""
    out = []
    for line in output.splitlines():
        try:
            out.append(json.loads(line)["record"]["message"])
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _sql(cluster: PrivateCluster, db: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(cluster.app_dsn(db), autocommit=True, connect_timeout=3) as conn:
        cur = conn.execute(sql, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _enqueue(
    cluster: PrivateCluster,
    db: str,
    n: int,
    *,
    tag: str,
    delay_s: float = 0.0,
    duration_s: float = 0.0,
) -> list[int]:
    rows = _sql(
        cluster,
        db,
        "select public.enqueue_job('noop', jsonb_build_object('duration_s', %s::float),"
        " now() + make_interval(secs => %s), 0, %s || ':' || g, null)"
        " from generate_series(1, %s) g",
        duration_s,
        delay_s,
        tag,
        n,
    )
    return [r[0] for r in rows]


def _statuses(cluster: PrivateCluster, db: str, ids: list[int]) -> dict[str, int]:
    rows = _sql(
        cluster,
        db,
        "select status, count(*) from public.jobs where id = any(%s) group by status",
        ids,
    )
    return {s: int(n) for s, n in rows}


@pytest.mark.timeout(int(OUTAGE_S) + 180)
def test_database_down_for_a_minute(ensure_up: PrivateCluster, outage_db: str) -> None:
    cluster, db = ensure_up, outage_db
    with ThreadedSandbox(cluster.admin_dsn(db)) as stack:
        _run_outage(cluster, db, stack)


def _run_outage(cluster: PrivateCluster, db: str, stack: SandboxStack) -> None:
    env = {
        **stack.env(cluster.app_dsn(db)),
        "DOORBELL_ENABLED": "true",
        "POLL_INTERVAL_S": "1",
        "HEALTH_GRACE_S": str(GRACE_S),
        "LEASE_S": str(LEASE_S),
        "LOG_LEVEL": "INFO",
    }
    w = WorkerProcess(env, name="outage-survivor", kinds="noop").start()
    try:
        w.wait_ready()
        assert w.proc is not None
        pid = w.proc.pid
        status = w.health()
        assert status is not None and status[0] == 200, status

        # Before the outage: quick jobs (done before it starts), one long job that is running
        # when the database goes away, and jobs that fall due in the middle of the outage.
        early = _enqueue(cluster, db, 50, tag="early")
        wait_for_sync(
            lambda: _statuses(cluster, db, early).get("succeeded") == len(early),
            timeout=30,
            message="early jobs done",
        )
        running = _enqueue(cluster, db, 1, tag="running", duration_s=3.0)
        due_during = _enqueue(cluster, db, 20, tag="due-during", delay_s=OUTAGE_S / 2)
        wait_for_sync(
            lambda: _statuses(cluster, db, running).get("running") == 1,
            timeout=15,
            message="long job running",
        )

        # The outage.
        t0 = time.monotonic()
        cluster.stop()
        assert not cluster.accepting()
        seen_503 = wait_for_sync(
            lambda: (h := w.health()) is not None and h[0] == 503 and h,
            timeout=GRACE_S + 15,
            message="/health answers 503 after the grace period",
        )
        reported_after = time.monotonic() - t0
        body = seen_503[1]
        assert body["database"]["up"] is False
        assert body["status"] == "down"
        assert reported_after >= GRACE_S - 1  # not before the grace period
        # Stay up, as the same process, for the rest of the minute; /health keeps answering.
        health_codes: list[int | None] = []
        while time.monotonic() - t0 < OUTAGE_S:
            assert w.proc.poll() is None, f"worker exited during the outage:\n{w.output()}"
            h = w.health()
            health_codes.append(h[0] if h else None)
            time.sleep(1.0)  # pacing the observation, not synchronisation
        # Every answer says 503 (a probe may time out on a busy machine: /health answers within
        # 1 s or counts as no answer here).
        answered = [c for c in health_codes if c is not None]
        assert set(answered) == {503} and len(answered) >= len(health_codes) // 2, health_codes
        cluster.start()
        outage = time.monotonic() - t0

        # Back: /health recovers, and everything runs.
        wait_for_sync(
            lambda: (h := w.health()) is not None and h[0] == 200 and h[1]["database"]["up"],
            timeout=30,
            message="/health back to 200",
        )
        after = _enqueue(cluster, db, 50, tag="after")
        deadline = time.monotonic() + 60

        def all_done() -> bool:
            # pg_cron's reap_expired_leases, every minute in production; here, every poll.
            _sql(cluster, db, "select public.reap_expired_leases()")
            ids = running + due_during + after
            return _statuses(cluster, db, ids).get("succeeded") == len(ids)

        wait_for_sync(
            all_done,
            timeout=deadline - time.monotonic(),
            interval=0.5,
            message="jobs from before, during and after the outage all succeeded",
        )
        assert w.proc.poll() is None and w.proc.pid == pid  # the same process throughout
        messages = log_messages(w.output())
        assert any(m == "database is back" for m in messages)
        # Started once: no crash loop, no restart by a supervisor we do not have.
        assert sum(m.startswith("worker outage-survivor ready") for m in messages) == 1
        print(
            f"\noutage {outage:.1f}s: /health 503 after {reported_after:.1f}s "
            f"(grace {GRACE_S:.0f}s), same pid {pid}; "
            f"{len(early) + len(running) + len(due_during) + len(after)} jobs succeeded"
        )
    finally:
        if not cluster.accepting():
            cluster.start()
        w.stop()
