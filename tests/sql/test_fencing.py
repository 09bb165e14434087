"""The fencing contract: every claim gets a fresh `lease_token`; a write that presents a token
other than the job's current one changes nothing and returns false (or no row).

The case that matching on `locked_by` alone gets wrong: a job claimed with a 1 s lease, reaped,
and claimed again by the same worker. The first claim's late writes must all be refused, the
second claim's accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.sql.helpers import claim, enqueue, job, scalar
from tests.waiting import wait_for_sync


@pytest.fixture
def conn(shared_conn: psycopg.Connection) -> psycopg.Connection:
    shared_conn.execute("truncate public.jobs, public.alerts restart identity")
    return shared_conn


def reclaimed(conn: psycopg.Connection) -> tuple[int, int, int]:
    """A job whose 1 s lease ran out and was reaped, claimed again by the same worker."""
    job_id = enqueue(conn)
    [first] = claim(conn, worker="w1", lease="1 second")
    wait_for_sync(
        lambda: scalar(
            conn, "select locked_until < now() from public.jobs where id = %s", (job_id,)
        ),
        timeout=5,
        message="the 1 s lease to run out",
    )
    assert scalar(conn, "select public.reap_expired_leases()") == 1
    [second] = claim(conn, worker="w1", lease="1 hour")
    assert second["id"] == job_id and second["locked_by"] == first["locked_by"] == "w1"
    assert first["lease_token"] is not None and second["lease_token"] is not None
    assert second["lease_token"] != first["lease_token"]
    return job_id, first["lease_token"], second["lease_token"]


# Each write about a claim, given (job id, token); returns what it returned.
Write = Callable[[psycopg.Connection, int, int], Any]

WRITES: dict[str, tuple[Write, Any, Any, str | None]] = {
    # name: (call, refused result, accepted result, status after acceptance)
    "complete_job": (
        lambda c, i, t: scalar(
            c, "select public.complete_job(%s, 'w1', lease_token => %s)", (i, t)
        ),
        False,
        True,
        "succeeded",
    ),
    "complete_jobs": (
        lambda c, i, t: c.execute(
            "select * from public.complete_jobs('w1', %s, %s)", ([i], [t])
        ).fetchall(),
        [],
        [(1,)],
        "succeeded",
    ),
    "fail_job": (
        lambda c, i, t: scalar(
            c, "select public.fail_job(%s, 'w1', lease_token => %s, error => 'late')", (i, t)
        ),
        None,
        "queued",
        "queued",
    ),
    "snooze_job": (
        lambda c, i, t: scalar(
            c, "select public.snooze_job(%s, 'w1', lease_token => %s, until => now())", (i, t)
        ),
        False,
        True,
        "queued",
    ),
    "skip_job": (
        lambda c, i, t: scalar(
            c, "select public.skip_job(%s, 'w1', lease_token => %s, reason => 'late')", (i, t)
        ),
        False,
        True,
        "skipped",
    ),
    "release_jobs": (
        lambda c, i, t: scalar(c, "select public.release_jobs('w1', %s, %s)", ([i], [t])),
        0,
        1,
        "queued",
    ),
    "heartbeat_jobs": (
        lambda c, i, t: c.execute(
            "select id from public.heartbeat_jobs('w1', %s, %s, interval '2 hours')", ([i], [t])
        ).fetchall(),
        [],
        [(1,)],
        "running",
    ),
    "holds_lease": (
        lambda c, i, t: scalar(c, "select public.holds_lease(%s, 'w1', %s)", (i, t)),
        False,
        True,
        "running",
    ),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_the_first_claims_token_is_refused_and_the_seconds_accepted(
    conn: psycopg.Connection, name: str
) -> None:
    write, refused, accepted, status_after = WRITES[name]
    job_id, stale, current = reclaimed(conn)
    before = job(conn, job_id)

    assert write(conn, job_id, stale) == refused
    after = job(conn, job_id)
    assert after == before, "a stale token changed the job"

    assert write(conn, job_id, current) == accepted
    row = job(conn, job_id)
    assert row["status"] == status_after
    if status_after != "running":
        assert row["lease_token"] is None and row["locked_by"] is None
        assert write(conn, job_id, current) == refused  # a claim ends once


def test_every_claim_sets_a_fresh_larger_token_and_the_end_of_a_claim_clears_it(
    conn: psycopg.Connection,
) -> None:
    job_id = enqueue(conn, max_attempts=5)
    seen: list[int] = []
    for _ in range(4):
        [held] = claim(conn, worker="w1")
        # Drawn from a sequence: never reused, and every later claim holds a larger token.
        assert all(held["lease_token"] > earlier for earlier in seen)
        seen.append(held["lease_token"])
        assert scalar(
            conn,
            "select public.snooze_job(%s, 'w1', lease_token => %s, until => now())",
            (job_id, held["lease_token"]),
        )
        assert job(conn, job_id)["lease_token"] is None
    assert len(seen) == 4


def test_another_workers_name_with_the_right_token_is_refused(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    [held] = claim(conn, worker="w1")
    assert (
        scalar(
            conn,
            "select public.complete_job(%s, 'w2', lease_token => %s)",
            (job_id, held["lease_token"]),
        )
        is False
    )
    assert job(conn, job_id)["status"] == "running"


def test_batch_calls_need_one_token_per_id(conn: psycopg.Connection) -> None:
    ids = [enqueue(conn) for _ in range(2)]
    held = claim(conn, worker="w1", max_jobs=2)
    for sql in (
        "select * from public.complete_jobs('w1', %s, %s)",
        "select * from public.release_jobs('w1', %s, %s)",
        "select * from public.heartbeat_jobs('w1', %s, %s)",
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="one token per id"):
            conn.execute(sql, (ids, [held[0]["lease_token"]]))
    assert {job(conn, i)["status"] for i in ids} == {"running"}


def test_holds_lease_locks_the_claim_against_the_reaper(dsn: str) -> None:
    """Inside a transaction that checked its lease, the reaper skips the job; after it, not."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        job_id = enqueue(conn)
        [held] = claim(conn, worker="w1", lease="1 hour")
        conn.execute(
            "update public.jobs set locked_until = now() - interval '1 second' where id = %s",
            (job_id,),
        )
        with psycopg.connect(dsn) as posting:  # a handler's transaction: check, then write
            assert posting.execute(
                "select public.holds_lease(%s, 'w1', %s)", (job_id, held["lease_token"])
            ).fetchone() == (True,)
            assert scalar(conn, "select public.reap_expired_leases()") == 0  # skipped: locked
            posting.rollback()
        assert scalar(conn, "select public.reap_expired_leases()") == 1
        assert (
            scalar(conn, "select public.holds_lease(%s, 'w1', %s)", (job_id, held["lease_token"]))
            is False
        )
