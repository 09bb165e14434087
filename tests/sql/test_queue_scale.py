"""The queue at batch scale: enqueue_jobs, the once-per-statement kind check, and plans that stay
O(batch) with a backlog whatever the statistics say (migration 20261201006000)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.sql.helpers import Jsonb, claim, enqueue, job, scalar
from worker.db import query

BACKLOG = 5000


@pytest.fixture
def conn(shared_conn: psycopg.Connection) -> psycopg.Connection:
    shared_conn.execute("truncate public.jobs, public.alerts restart identity")
    return shared_conn


def enqueue_jobs(conn: psycopg.Connection, payloads: list[object], **kw: object) -> list[int]:
    args = {"kind": "noop", "payloads": [Jsonb(p) for p in payloads], **kw}
    names = ", ".join(f"{k} => %({k})s" for k in args)
    return [r[0] for r in conn.execute(f"select * from public.enqueue_jobs({names})", args)]


# enqueue_jobs -----------------------------------------------------------------------------------


def test_enqueue_jobs_one_job_per_payload_in_order(conn: psycopg.Connection) -> None:
    ids = enqueue_jobs(conn, [{"n": i} for i in range(50)])
    assert len(set(ids)) == 50
    for i, job_id in enumerate(ids):
        row = job(conn, job_id)
        assert row["payload"] == {"n": i}
        assert row["status"] == "queued" and row["priority"] == 0 and row["attempts"] == 0
    default_attempts = scalar(
        conn, "select default_max_attempts from public.job_kinds where kind = 'noop'"
    )
    assert {job(conn, i)["max_attempts"] for i in ids} == {default_attempts}
    # The identity keeps counting after ids drawn by enqueue_jobs.
    assert enqueue(conn) > max(ids)


def test_enqueue_jobs_with_every_argument(conn: psycopg.Connection) -> None:
    run_at = scalar(conn, "select now() + interval '1 hour'")
    ids = enqueue_jobs(
        conn, [{}, {}], run_at=run_at, priority=7, dedupe_keys=["a", None], max_attempts=2
    )
    rows = [job(conn, i) for i in ids]
    assert [r["dedupe_key"] for r in rows] == ["a", None]
    assert {(r["run_at"], r["priority"], r["max_attempts"]) for r in rows} == {(run_at, 7, 2)}


def test_enqueue_jobs_dedupes_like_enqueue_job(conn: psycopg.Connection) -> None:
    existing = enqueue(conn, dedupe_key="k1")
    ids = enqueue_jobs(
        conn, [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}], dedupe_keys=["k1", "k2", "k2", None]
    )
    assert ids[0] == existing  # an existing job's id, never a second job
    assert ids[1] == ids[2] != existing  # a key repeated within the batch: one job
    assert len({ids[1], ids[3], existing}) == 3
    assert job(conn, ids[1])["payload"] == {"n": 1}  # the first payload with the key wins
    assert scalar(conn, "select count(*) from public.jobs") == 3


def test_enqueue_jobs_of_nothing_is_nothing(conn: psycopg.Connection) -> None:
    assert enqueue_jobs(conn, []) == []
    assert scalar(conn, "select count(*) from public.jobs") == 0


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ([{}, [1], {}], "job payload 2 of 3 must be a JSON object, got array"),
        ([{}, None], "job payload 2 of 2 must be a JSON object, got null"),
        ([{"scheduled_tweet_id": "x1"}], "job payload 1 of 1: scheduled_tweet_id must be"),
    ],
)
def test_enqueue_jobs_refuses_a_bad_payload_naming_it(
    conn: psycopg.Connection, payloads: list[object], message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(
            "select public.enqueue_jobs('noop', %s::jsonb[])",
            ([None if p is None else Jsonb(p) for p in payloads],),
        )
    assert scalar(conn, "select count(*) from public.jobs") == 0


def test_enqueue_jobs_refuses_malformed_arrays(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="got null"):
        conn.execute("select public.enqueue_jobs('noop', null)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="one-dimensional"):
        conn.execute("select public.enqueue_jobs('noop', array[['{}', '{}']]::jsonb[])")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="2 payloads, 1 keys"):
        enqueue_jobs(conn, [{}, {}], dedupe_keys=["only-one"])
    assert scalar(conn, "select count(*) from public.jobs") == 0


# the kind check ---------------------------------------------------------------------------------


def test_unknown_kinds_are_refused_once_per_statement_whoever_inserts(
    conn: psycopg.Connection,
) -> None:
    known = ", ".join(r[0] for r in conn.execute("select kind from public.job_kinds order by 1"))
    with pytest.raises(psycopg.errors.InvalidParameterValue) as exc:
        conn.execute("select public.enqueue_jobs('nope', array['{}']::jsonb[])")
    assert 'unknown job kind "nope"' in str(exc.value) and f"known kinds: {known}" in str(exc.value)
    # One bad row among good ones: the whole statement is refused.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='unknown job kind "bogus"'):
        conn.execute(
            "insert into public.jobs (kind) select case when g = 500 then 'bogus' else 'noop' end"
            " from generate_series(1, 1000) g"
        )
    assert scalar(conn, "select count(*) from public.jobs") == 0
    # Changing a job's kind is checked too, once per statement that sets it.
    job_id = enqueue(conn)
    other = enqueue(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='unknown job kind "other"'):
        conn.execute("update public.jobs set kind = 'other' where id = %s", (job_id,))
    assert job(conn, job_id)["kind"] == "noop"
    conn.execute("update public.jobs set kind = 'poll_mentions' where id = %s", (other,))
    assert job(conn, other)["kind"] == "poll_mentions"


def test_a_payload_is_a_json_object_however_it_is_written(conn: psycopg.Connection) -> None:
    """The payload rule holds for direct inserts and updates too (domain job_payload)."""
    with pytest.raises(psycopg.errors.CheckViolation, match="job_payload_is_object"):
        conn.execute("insert into public.jobs (kind, payload) values ('noop', '[1]')")
    job_id = enqueue(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="job_payload_is_object"):
        conn.execute("update public.jobs set payload = '\"x\"' where id = %s", (job_id,))
    with pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("update public.jobs set payload = null where id = %s", (job_id,))
    assert job(conn, job_id)["payload"] == {}


def test_claims_and_completions_pay_for_no_check_they_do_not_need(
    conn: psycopg.Connection,
) -> None:
    """Every job is updated at least twice (claimed, then finished). PostgreSQL re-fetches and
    locks the old row for any BEFORE UPDATE row trigger, and evaluates every table CHECK on every
    UPDATE: the queue keeps neither on columns its own updates do not set."""
    before_row_update = conn.execute(
        "select tgname from pg_catalog.pg_trigger where tgrelid = 'public.jobs'::regclass"
        " and not tgisinternal and (tgtype & 1) = 1 and (tgtype & 2) = 2 and (tgtype & 16) = 16"
    ).fetchall()
    assert before_row_update == []
    checks = [
        r[0]
        for r in conn.execute(
            "select pg_get_constraintdef(oid) from pg_catalog.pg_constraint"
            " where conrelid = 'public.jobs'::regclass and contype = 'c'"
        )
    ]
    assert checks and not [c for c in checks if "payload" in c], checks


def test_an_unknown_kind_is_refused_even_when_its_dedupe_key_exists(
    conn: psycopg.Connection,
) -> None:
    """A conflicting row is never inserted, so no insert trigger sees it: the functions check."""
    enqueue(conn, dedupe_key="taken")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown job kind"):
        conn.execute("select public.enqueue_job('nope', '{}', null, 0, 'taken')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown job kind"):
        conn.execute(
            "select public.enqueue_jobs('nope', array['{}']::jsonb[], null, 0, array['taken'])"
        )


# plans with a backlog ---------------------------------------------------------------------------


@pytest.fixture
def explained(shared_admin_dsn: str) -> Iterator[tuple[psycopg.Connection, list[str]]]:
    """A superuser session that receives the plan of every statement, nested ones included."""
    with psycopg.connect(shared_admin_dsn, autocommit=True) as c:
        c.execute("truncate public.jobs, public.alerts restart identity")
        plans: list[str] = []
        c.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        c.execute("load 'auto_explain'")
        c.execute("set auto_explain.log_nested_statements = on")
        yield c, plans


def _plans_of(
    conn: psycopg.Connection, plans: list[str], statement: str, params: object = None
) -> str:
    plans.clear()
    conn.execute("set auto_explain.log_min_duration = 0")
    conn.execute("set client_min_messages = log")
    try:
        rows = conn.execute(statement, params).fetchall()  # type: ignore[arg-type]
    finally:
        conn.execute("set client_min_messages = notice")
        conn.execute("set auto_explain.log_min_duration = -1")
    assert rows, statement
    return "\n".join(p for p in plans if "Query Text: select" not in p)


def _by_id(function: str, rows: list[dict[str, object]]) -> tuple[str, dict[str, object]]:
    """`function` called for `rows` (claims), with their lease tokens when the schema has them."""
    params: dict[str, object] = {"worker_id": "w1", "ids": [r["id"] for r in rows]}
    if "lease_token" in rows[0]:
        params["lease_tokens"] = [r["lease_token"] for r in rows]
    names = ", ".join(f"{k} => %({k})s" for k in params)
    return f"select * from public.{function}({names})", params


@pytest.mark.parametrize("statistics", ["none", "analyzed"])
def test_claim_and_complete_stay_o_batch_with_a_backlog(
    explained: tuple[psycopg.Connection, list[str]], statistics: str
) -> None:
    """The claim walks jobs_claim_idx in order and stops; the by-id writes use the primary key.

    PostgreSQL plans a SQL function's body generically (LIMIT and arrays unknown): before this
    migration the claim sorted every queued job or hash-joined the whole table, and the by-id
    writes scanned all of jobs_running_lease_idx, dead entries included.
    """
    conn, plans = explained
    conn.execute(
        "insert into public.jobs (kind, payload) select 'noop', jsonb_build_object('n', g)"
        " from generate_series(1, %s) g",
        (BACKLOG,),
    )
    if statistics == "analyzed":
        conn.execute("analyze public.jobs")
    for _ in range(5):  # jobs processed since the last vacuum leave dead index entries behind
        conn.execute(*_by_id("complete_jobs", claim(conn, "w1", max_jobs=100)))

    plan = _plans_of(conn, plans, "select id from public.claim_jobs('w1', array['noop'], 100)")
    assert "Index Scan using jobs_claim_idx" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan and "Hash" not in plan, plan
    running = conn.execute("select * from public.jobs where status = 'running'").fetchall()
    assert len(running) == 100
    columns = [c.name for c in conn.execute("select * from public.jobs limit 0").description or []]
    rows = [dict(zip(columns, r, strict=True)) for r in running]
    for function in ("heartbeat_jobs", "release_jobs", "complete_jobs"):
        if function == "complete_jobs":
            rows = claim(conn, "w1", max_jobs=100)
        plan = _plans_of(conn, plans, *_by_id(function, rows))
        assert "jobs_pkey" in plan and "jobs_running_lease_idx" not in plan, (function, plan)
        assert "Seq Scan on jobs" not in plan, (function, plan)


def test_reaping_still_finds_expired_leases_by_index(
    explained: tuple[psycopg.Connection, list[str]],
) -> None:
    conn, plans = explained
    conn.execute(
        "insert into public.jobs (kind, status, locked_by, locked_until, attempts)"
        " select 'noop', 'running', 'w', now() + interval '1 hour', 1 from generate_series(1, %s)",
        (BACKLOG,),
    )
    conn.execute("update public.jobs set locked_until = now() - interval '1 s' where id <= 3")
    conn.execute("analyze public.jobs")
    plan = _plans_of(conn, plans, "select public.reap_expired_leases()")
    assert "jobs_running_lease_idx" in plan, plan
    assert scalar(conn, "select count(*) from public.jobs where status = 'queued'") == 3


def test_next_run_at_reads_the_queued_jobs_only(
    explained: tuple[psycopg.Connection, list[str]],
) -> None:
    """The worker's wake-up time (the earliest future job of its kinds) comes from
    jobs_claim_idx, partial on the queued jobs: the history of finished jobs is never read."""
    conn, _ = explained
    conn.execute(
        "insert into public.jobs (kind, status, attempts, finished_at)"
        " select 'noop', 'succeeded', 1, now() from generate_series(1, %s)",
        (BACKLOG,),
    )
    conn.execute(
        "insert into public.jobs (kind, run_at) select 'noop', now() + make_interval(mins => g)"
        " from generate_series(1, 20) g"
    )
    # Sooner, but of a kind this worker does not run.
    conn.execute(
        "insert into public.jobs (kind, run_at) values ('poll_mentions', now() + interval '1 s')"
    )
    conn.execute("analyze public.jobs")
    statement = query("next_run_at")
    plan = "\n".join(r[0] for r in conn.execute("explain " + statement, {"kinds": ["noop"]}))
    assert "jobs_claim_idx" in plan and "Seq Scan on jobs" not in plan, plan
    soonest = conn.execute(statement, {"kinds": ["noop"]}).fetchone()
    first = scalar(
        conn, "select min(run_at) from public.jobs where kind = 'noop' and status = 'queued'"
    )
    assert soonest is not None and soonest[0] == first
