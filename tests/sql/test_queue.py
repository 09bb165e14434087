"""The job queue's SQL API: enqueue, claim, heartbeat, complete, fail, snooze, release, reap."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from tests.sql.helpers import (
    Jsonb,
    claim,
    enqueue,
    expire_lease,
    job,
    open_alerts,
    scalar,
    token,
    unused_token,
)
from tests.waiting import wait_for_sync


@pytest.fixture
def conn(shared_conn: psycopg.Connection) -> psycopg.Connection:
    """The module's clone with an empty queue: these tests touch only `jobs` and `alerts`.

    Truncating two tables costs milliseconds; a fresh clone per test costs a few hundred.
    """
    shared_conn.execute("truncate public.jobs, public.alerts restart identity")
    return shared_conn


# enqueue_job ------------------------------------------------------------------------------------


def test_enqueue_defaults(conn: psycopg.Connection) -> None:
    job_id = scalar(conn, "select public.enqueue_job('noop')")
    row = job(conn, job_id)
    default_attempts = scalar(
        conn, "select default_max_attempts from public.job_kinds where kind = 'noop'"
    )
    assert row["kind"] == "noop"
    assert row["payload"] == {}
    assert row["status"] == "queued"
    assert row["priority"] == 0
    assert row["attempts"] == 0
    assert row["max_attempts"] == default_attempts
    assert row["dedupe_key"] is None
    assert row["locked_by"] is None and row["locked_until"] is None
    assert row["finished_at"] is None and row["result"] is None
    assert scalar(conn, "select now() - %s::timestamptz", (row["run_at"],)) < timedelta(seconds=5)
    assert row["run_at"] <= scalar(conn, "select now()")


def test_enqueue_with_every_argument(conn: psycopg.Connection) -> None:
    job_id = scalar(
        conn,
        "select public.enqueue_job('collect_stats', '{\"a\": 1}', now() + interval '1 hour', 7,"
        " 'stats:1', 9)",
    )
    row = job(conn, job_id)
    assert (
        row["kind"],
        row["payload"],
        row["priority"],
        row["dedupe_key"],
        row["max_attempts"],
    ) == (
        "collect_stats",
        {"a": 1},
        7,
        "stats:1",
        9,
    )
    assert scalar(conn, "select %s::timestamptz - now()", (row["run_at"],)) > timedelta(minutes=59)


def test_enqueue_dedupe_returns_the_existing_job(conn: psycopg.Connection) -> None:
    first = enqueue(conn, payload={"n": 1}, dedupe_key="k")
    second = enqueue(conn, payload={"n": 2}, dedupe_key="k", priority=5)
    assert second == first
    assert scalar(conn, "select count(*) from public.jobs where dedupe_key = 'k'") == 1
    assert job(conn, first)["payload"] == {"n": 1}  # the first job is untouched
    # Still deduplicated once the job has finished (while it is retained).
    claimed = claim(conn)
    assert [j["id"] for j in claimed] == [first]
    assert scalar(
        conn, "select public.complete_job(%s, 'w1', %s)", (first, claimed[0]["lease_token"])
    )
    assert enqueue(conn, dedupe_key="k") == first
    # Jobs without a key are never deduplicated.
    assert enqueue(conn) != enqueue(conn)


def test_enqueue_refuses_an_unknown_kind_listing_the_known_ones(conn: psycopg.Connection) -> None:
    known = [r[0] for r in conn.execute("select kind from public.job_kinds order by kind")]
    assert {"generate_tweet", "post_tweet", "like_reply", "poll_mentions", "collect_stats"} <= set(
        known
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        conn.execute("select public.enqueue_job('tweet_something')")
    text = str(exc.value)
    assert 'unknown job kind "tweet_something"' in text
    assert "known kinds: " + ", ".join(known) in text
    # The table refuses it too, whoever inserts.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown job kind"):
        conn.execute("insert into public.jobs (kind) values ('nope')")
    assert scalar(conn, "select count(*) from public.jobs") == 0


@pytest.mark.parametrize(
    ("payload", "typ"),
    [
        ("'[1, 2]'::jsonb", "array"),
        ("'\"text\"'::jsonb", "string"),
        ("'3'::jsonb", "number"),
        ("'null'::jsonb", "null"),
        ("null", "null"),
    ],
)
def test_enqueue_refuses_a_non_object_payload(
    conn: psycopg.Connection, payload: str, typ: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        conn.execute(f"select public.enqueue_job('noop', {payload})")
    assert f"job payload must be a JSON object, got {typ}" in str(exc.value)
    assert scalar(conn, "select count(*) from public.jobs") == 0


# claim_jobs -------------------------------------------------------------------------------------


def test_claim_order_is_priority_desc_then_run_at(conn: psycopg.Connection) -> None:
    ids = {}
    for name, priority, ago in [
        ("a", 0, 10),
        ("b", 10, 1),
        ("c", 0, 20),
        ("d", 5, 5),
        ("e", 10, 30),
    ]:
        ids[name] = scalar(
            conn,
            "select public.enqueue_job('noop', '{}', now() - make_interval(secs => %s), %s)",
            (ago, priority),
        )
    order = []
    while batch := claim(conn, max_jobs=1):
        order.append(batch[0]["id"])
    assert order == [ids[n] for n in "ebdca"]


def test_claim_returns_the_top_jobs_as_a_set(conn: psycopg.Connection) -> None:
    low = [enqueue(conn, priority=0) for _ in range(3)]
    high = [enqueue(conn, priority=1) for _ in range(2)]
    got = claim(conn, max_jobs=3)
    assert len(got) == 3
    assert set(high) <= {j["id"] for j in got}
    assert len({j["id"] for j in got} & set(low)) == 1


def test_claim_skips_future_jobs_and_other_kinds(conn: psycopg.Connection) -> None:
    enqueue(conn, run_at=None)
    future = scalar(conn, "select public.enqueue_job('noop', '{}', now() + interval '1 hour')")
    stats = enqueue(conn, "collect_stats")
    assert [j["id"] for j in claim(conn, kinds=("collect_stats",), max_jobs=10)] == [stats]
    got = claim(conn, kinds=("noop", "collect_stats"), max_jobs=10)
    assert len(got) == 1 and got[0]["id"] != future
    assert claim(conn, kinds=("noop", "collect_stats"), max_jobs=10) == []
    assert claim(conn, kinds=(), max_jobs=10) == []
    assert job(conn, future)["status"] == "queued"


def test_claim_respects_max(conn: psycopg.Connection) -> None:
    for _ in range(5):
        enqueue(conn)
    assert claim(conn, max_jobs=0) == []
    assert len(claim(conn, max_jobs=2)) == 2
    assert len(claim(conn, max_jobs=2)) == 2
    assert len(claim(conn, max_jobs=2)) == 1
    assert claim(conn, max_jobs=2) == []


def test_claim_sets_a_lease_and_counts_the_attempt(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    [got] = claim(conn, worker="worker-a", lease="90 seconds")
    assert got["id"] == job_id
    assert got["status"] == "running"
    assert got["attempts"] == 1
    assert got["locked_by"] == "worker-a"
    assert got["started_at"] is not None
    lease_left = scalar(conn, "select %s::timestamptz - now()", (got["locked_until"],))
    assert timedelta(seconds=80) < lease_left <= timedelta(seconds=90)
    assert job(conn, job_id)["locked_until"] == got["locked_until"]
    assert claim(conn, worker="worker-b") == []  # held: nobody else gets it


# heartbeat_jobs / complete_job / complete_jobs --------------------------------------------------


def test_heartbeat_extends_only_own_leases(conn: psycopg.Connection) -> None:
    mine = enqueue(conn)
    [my_claim] = claim(conn, worker="w1", lease="10 seconds")
    theirs = enqueue(conn)
    [their_claim] = claim(conn, worker="w2", lease="10 seconds")
    their_lease = job(conn, theirs)["locked_until"]
    tokens = [my_claim["lease_token"], their_claim["lease_token"]]
    extended = conn.execute(
        "select * from public.heartbeat_jobs('w1', %s, %s, '1 hour')", ([mine, theirs], tokens)
    ).fetchall()
    assert extended == [(mine, my_claim["lease_token"])]
    assert scalar(conn, "select locked_until - now() from public.jobs where id = %s", (mine,)) > (
        timedelta(minutes=59)
    )
    assert job(conn, theirs)["locked_until"] == their_lease
    # A finished job is not "held" any more.
    assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (mine, tokens[0])) is True
    assert (
        conn.execute(
            "select * from public.heartbeat_jobs('w1', %s, %s)", ([mine], tokens[:1])
        ).fetchall()
        == []
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="one token per id"):
        conn.execute(
            "select * from public.heartbeat_jobs('w1', %s, %s)", ([mine, theirs], tokens[:1])
        )


def test_complete_only_by_the_holder(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    unclaimed = token(conn, job_id)
    assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (job_id, unclaimed)) is False
    [held] = claim(conn, worker="w1")
    tok = held["lease_token"]
    assert scalar(conn, "select public.complete_job(%s, 'w2', %s)", (job_id, tok)) is False
    assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (job_id, unclaimed)) is False
    assert job(conn, job_id)["status"] == "running"
    done = scalar(
        conn,
        "select public.complete_job(%s, 'w1', lease_token => %s, result => %s)",
        (job_id, tok, Jsonb({"tweet_id": "1"})),
    )
    assert done is True
    row = job(conn, job_id)
    assert row["status"] == "succeeded"
    assert row["result"] == {"tweet_id": "1"}
    assert row["finished_at"] is not None
    assert row["locked_by"] is None and row["locked_until"] is None and row["lease_token"] is None
    assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (job_id, tok)) is False  # once


def test_complete_jobs_batch_completes_only_held_jobs(conn: psycopg.Connection) -> None:
    mine = [enqueue(conn) for _ in range(5)]
    claims = {j["id"]: j["lease_token"] for j in claim(conn, worker="w1", max_jobs=5)}
    assert set(claims) == set(mine)
    theirs = enqueue(conn)
    claim(conn, worker="w2")
    queued = enqueue(conn)
    ids = [*mine, theirs, queued, 999999]
    tokens = [claims[i] for i in mine] + [
        token(conn, theirs),
        token(conn, queued),
        unused_token(conn),
    ]
    done = conn.execute(
        "select * from public.complete_jobs('w1', %s, %s)", (ids, tokens)
    ).fetchall()
    assert sorted(r[0] for r in done) == sorted(mine)
    statuses = dict(conn.execute("select id, status from public.jobs").fetchall())
    assert all(statuses[i] == "succeeded" for i in mine)
    assert statuses[theirs] == "running" and statuses[queued] == "queued"
    assert (
        scalar(
            conn,
            "select count(*) from public.jobs where id = any(%s) and finished_at is null",
            (mine,),
        )
        == 0
    )
    assert (
        conn.execute(
            "select * from public.complete_jobs('w1', %s, %s)", (mine, tokens[: len(mine)])
        ).fetchall()
        == []
    )


# fail_job: backoff, retry_in, dead-lettering ----------------------------------------------------


def _fail(conn: psycopg.Connection, job_id: int, worker: str = "w1", **kw: object) -> str | None:
    args = {
        "id": job_id,
        "worker_id": worker,
        "lease_token": kw.pop("lease_token", None) or token(conn, job_id),
        "error": kw.pop("error", "boom"),
        **kw,
    }
    names = ", ".join(f"{k} => %({k})s" for k in args)
    return scalar(conn, f"select public.fail_job({names})", args)


def _delay_s(conn: psycopg.Connection, job_id: int) -> float:
    # fail_job sets run_at = now() + delay and updated_at = now() in the same transaction.
    return float(
        scalar(
            conn,
            "select extract(epoch from run_at - updated_at) from public.jobs where id = %s",
            (job_id,),
        )
    )


def test_fail_backs_off_exponentially_with_jitter_capped_at_an_hour(
    conn: psycopg.Connection,
) -> None:
    job_id = enqueue(conn, max_attempts=20)
    for n in range(1, 14):
        [got] = claim(conn)
        assert got["attempts"] == n
        assert _fail(conn, job_id, error=f"failure {n}") == "queued"
        delay = _delay_s(conn, job_id)
        base = 5 * 2 ** (n - 1)
        lo, hi = min(0.75 * base, 3600), min(1.25 * base, 3600)
        assert lo - 0.001 <= delay <= hi + 0.001, (n, delay, lo, hi)
        row = job(conn, job_id)
        assert row["status"] == "queued" and row["last_error"] == f"failure {n}"
        assert row["locked_by"] is None and row["finished_at"] is None
        assert claim(conn) == []  # not before its backoff
        conn.execute("update public.jobs set run_at = now() where id = %s", (job_id,))


def test_retry_delay_is_jittered_within_bounds(conn: psycopg.Connection) -> None:
    for n in (1, 3, 6):
        base = 5 * 2 ** (n - 1)
        lo, hi = conn.execute(
            "select min(extract(epoch from public.retry_delay(%s))),"
            " max(extract(epoch from public.retry_delay(%s))) from generate_series(1, 2000)",
            (n, n),
        ).fetchone()
        assert 0.75 * base <= float(lo) and float(hi) <= 1.25 * base
        assert float(hi) - float(lo) > 0.4 * base  # really jittered, over most of the range
    # Far past the cap (and no overflow for absurd attempt counts).
    assert scalar(conn, "select max(public.retry_delay(n)) from generate_series(12, 10000) n") <= (
        timedelta(hours=1)
    )


def test_fail_retry_in_overrides_the_backoff(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    claim(conn)
    assert _fail(conn, job_id, retry_in=timedelta(seconds=42)) == "queued"
    assert _delay_s(conn, job_id) == pytest.approx(42.0, abs=0.001)


def test_fail_non_retryable_goes_straight_to_dead(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, max_attempts=5)
    claim(conn)
    assert _fail(conn, job_id, error="bad payload", retryable=False) == "dead"
    row = job(conn, job_id)
    assert row["status"] == "dead" and row["attempts"] == 1
    assert row["finished_at"] is not None and row["last_error"] == "bad payload"


def test_fail_dead_after_max_attempts_raises_one_alert_per_kind(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, max_attempts=2)
    claim(conn)
    assert _fail(conn, job_id) == "queued"
    assert open_alerts(conn) == []
    conn.execute("update public.jobs set run_at = now() where id = %s", (job_id,))
    claim(conn)
    assert _fail(conn, job_id, error="still broken") == "dead"
    assert job(conn, job_id)["attempts"] == 2
    [alert] = open_alerts(conn)
    assert (alert["kind"], alert["level"], alert["dedupe_key"]) == (
        "job_dead",
        "critical",
        "job_dead:noop",
    )
    assert str(job_id) in alert["message"] and "still broken" in alert["message"]
    assert alert["details"]["job_id"] == job_id and alert["occurrences"] == 1

    # A second dead job of the same kind bumps the open alert; another kind gets its own.
    second = enqueue(conn, max_attempts=1)
    claim(conn)
    assert _fail(conn, second) == "dead"
    [alert] = open_alerts(conn)
    assert alert["occurrences"] == 2
    other = enqueue(conn, "collect_stats", max_attempts=1)
    claim(conn, kinds=("collect_stats",))
    assert _fail(conn, other) == "dead"
    assert sorted(a["dedupe_key"] for a in open_alerts(conn)) == [
        "job_dead:collect_stats",
        "job_dead:noop",
    ]
    # Once resolved, the next dead job opens a new alert.
    assert scalar(conn, "select public.resolve_alert('job_dead:noop')") is True
    third = enqueue(conn, max_attempts=1)
    claim(conn)
    _fail(conn, third)
    assert [a["occurrences"] for a in open_alerts(conn, "job_dead")] == [1, 1]
    assert (
        scalar(conn, "select count(*) from public.alerts where dedupe_key = 'job_dead:noop'") == 2
    )


def test_fail_only_by_the_holder_and_truncates_the_error(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    assert _fail(conn, job_id) is None  # not running
    claim(conn, worker="w1")
    assert _fail(conn, job_id, worker="w2") is None
    assert job(conn, job_id)["status"] == "running"
    assert _fail(conn, job_id, error="x" * 10_000) == "queued"
    assert len(job(conn, job_id)["last_error"]) == 4000


# snooze / release -------------------------------------------------------------------------------


def test_snooze_refunds_the_attempt(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn)
    [held] = claim(conn, worker="w1")
    tok = held["lease_token"]
    assert (
        scalar(
            conn, "select public.snooze_job(%s, 'w2', %s, now() + interval '1 hour')", (job_id, tok)
        )
        is False
    )
    assert (
        scalar(
            conn,
            "select public.snooze_job(%s, 'w1', %s, now() + interval '1 hour', 'rate limited')",
            (job_id, tok),
        )
        is True
    )
    row = job(conn, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0
    assert row["last_error"] == "rate limited" and row["locked_by"] is None
    assert scalar(conn, "select run_at - now() from public.jobs where id = %s", (job_id,)) > (
        timedelta(minutes=59)
    )
    assert claim(conn) == []
    # A time in the past means "now".
    conn.execute("update public.jobs set run_at = now() where id = %s", (job_id,))
    [held] = claim(conn)
    assert (
        scalar(
            conn,
            "select public.snooze_job(%s, 'w1', %s, now() - interval '1 day')",
            (job_id, held["lease_token"]),
        )
        is True
    )
    assert claim(conn)[0]["attempts"] == 1


def test_release_jobs_hands_back_only_own_jobs(conn: psycopg.Connection) -> None:
    ids = [enqueue(conn) for _ in range(3)]
    claims = {j["id"]: j["lease_token"] for j in claim(conn, worker="w1", max_jobs=3)}
    tokens = [claims[i] for i in ids]
    assert scalar(conn, "select public.release_jobs('w2', %s, %s)", (ids, tokens)) == 0
    assert (
        scalar(conn, "select public.release_jobs('w1', %s, %s)", (ids, [unused_token(conn)] * 3))
        == 0
    )
    assert scalar(conn, "select public.release_jobs('w1', %s, %s)", (ids, tokens)) == 3
    rows = [job(conn, i) for i in ids]
    assert all(
        r["status"] == "queued" and r["attempts"] == 0 and r["locked_by"] is None for r in rows
    )
    assert {j["id"] for j in claim(conn, worker="w2", max_jobs=10)} == set(ids)


# reap_expired_leases ----------------------------------------------------------------------------


def test_reap_returns_expired_jobs_to_the_queue_counting_the_attempt(
    conn: psycopg.Connection,
) -> None:
    expired = enqueue(conn, priority=1)
    [got] = claim(conn, worker="crashed", lease="1 millisecond")
    assert got["id"] == expired
    alive = enqueue(conn)
    claim(conn, worker="alive", lease="1 hour")
    wait_for_sync(
        lambda: scalar(
            conn, "select locked_until < now() from public.jobs where id = %s", (expired,)
        ),
        timeout=5,
        message="the 1 ms lease to lapse",
    )
    assert scalar(conn, "select public.reap_expired_leases()") == 1
    row = job(conn, expired)
    assert row["status"] == "queued" and row["attempts"] == 1
    assert row["locked_by"] is None and row["locked_until"] is None
    assert "lease expired" in row["last_error"] and "crashed" in row["last_error"]
    assert job(conn, alive)["status"] == "running"
    assert scalar(conn, "select public.reap_expired_leases()") == 0
    # The crashed worker's late completion is refused; the next claim counts a second attempt.
    stale = got["lease_token"]
    assert row["lease_token"] is None
    assert scalar(conn, "select public.complete_job(%s, 'crashed', %s)", (expired, stale)) is False
    [again] = claim(conn, worker="w2")
    assert again["id"] == expired and again["attempts"] == 2
    assert scalar(conn, "select public.complete_job(%s, 'crashed', %s)", (expired, stale)) is False
    assert scalar(conn, "select public.complete_job(%s, 'w2', %s)", (expired, stale)) is False


def test_reap_dead_letters_jobs_out_of_attempts(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, max_attempts=1)
    claim(conn, worker="crashed")
    expire_lease(conn, job_id)
    assert scalar(conn, "select public.reap_expired_leases()") == 1
    row = job(conn, job_id)
    assert row["status"] == "dead" and row["finished_at"] is not None
    assert [a["dedupe_key"] for a in open_alerts(conn)] == ["job_dead:noop"]
    assert claim(conn) == []


# cancel / retry / prune -------------------------------------------------------------------------


def test_cancel_job_only_when_queued(conn: psycopg.Connection) -> None:
    queued = enqueue(conn)
    running = enqueue(conn)
    conn.execute(
        "update public.jobs set run_at = now() - interval '1 minute' where id = %s", (running,)
    )
    assert [j["id"] for j in claim(conn)] == [running]
    assert scalar(conn, "select public.cancel_job(%s)", (running,)) is False
    assert scalar(conn, "select public.cancel_job(%s)", (queued,)) is True
    row = job(conn, queued)
    assert row["status"] == "cancelled" and row["finished_at"] is not None
    assert scalar(conn, "select public.cancel_job(%s)", (queued,)) is False
    assert claim(conn) == []


def test_retry_job_revives_dead_and_cancelled_jobs(conn: psycopg.Connection) -> None:
    dead = enqueue(conn, max_attempts=1)
    claim(conn)
    _fail(conn, dead)
    cancelled = enqueue(conn)
    scalar(conn, "select public.cancel_job(%s)", (cancelled,))
    queued = enqueue(conn, run_at=None, priority=-1)
    assert scalar(conn, "select public.retry_job(%s)", (queued,)) is False
    for job_id in (dead, cancelled):
        assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
        row = job(conn, job_id)
        assert row["status"] == "queued" and row["attempts"] == 0 and row["finished_at"] is None
    assert {j["id"] for j in claim(conn, max_jobs=2)} == {dead, cancelled}


def test_prune_finished_jobs_keeps_recent_and_unfinished(conn: psycopg.Connection) -> None:
    ids = {
        s: enqueue(conn, dedupe_key=s)
        for s in ("ok", "dead", "cancelled", "recent", "queued", "running")
    }
    conn.execute(
        "update public.jobs set status = v.status, finished_at = now() - v.age"
        " from (values ('ok', 'succeeded', interval '8 days'), ('dead', 'dead', interval '30 days'),"
        " ('cancelled', 'cancelled', interval '8 days'), ('recent', 'succeeded', interval '1 day'))"
        " as v(key, status, age) where dedupe_key = v.key"
    )
    conn.execute(
        "update public.jobs set created_at = now() - interval '90 days', run_at = now() - interval"
        " '90 days' where dedupe_key in ('queued', 'running')"
    )
    conn.execute(
        "update public.jobs set status = 'running', locked_by = 'w', locked_until = now()"
        " + interval '1 minute' where dedupe_key = 'running'"
    )
    assert scalar(conn, "select public.prune_finished_jobs(interval '7 days')") == 3
    left = {r[0] for r in conn.execute("select dedupe_key from public.jobs")}
    assert left == {"recent", "queued", "running"}
    assert scalar(conn, "select public.prune_finished_jobs()") == 0
    # A pruned job's dedupe key is free again.
    assert enqueue(conn, dedupe_key="ok") != ids["ok"]


def test_queue_depth_view(conn: psycopg.Connection) -> None:
    for _ in range(3):
        enqueue(conn)
    enqueue(conn, "collect_stats")
    claim(conn)
    depth = {
        (k, s): n for k, s, n in conn.execute("select kind, status, jobs from public.queue_depth")
    }
    assert depth == {("noop", "queued"): 2, ("noop", "running"): 1, ("collect_stats", "queued"): 1}
