"""Concurrent claimers and enqueuers on separate connections: no job handed out twice."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.sql.helpers import scalar

N_JOBS = 10_000
N_WORKERS = 6


def _claimer(dsn: str, worker: str, start: threading.Barrier, seed: int) -> list[int]:
    rng = random.Random(seed)
    got: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        start.wait()
        while True:
            rows = conn.execute(
                "select id, lease_token from public.claim_jobs(%s, array['noop'], %s,"
                " '10 minutes')",
                (worker, rng.choice((1, 2, 7, 25, 50, 100))),
            ).fetchall()
            if not rows:
                return got
            ids = [r[0] for r in rows]
            got.extend(ids)
            if rng.random() < 0.5:  # half the batches finish, half stay running (held)
                done = conn.execute(
                    "select * from public.complete_jobs(%s, %s, %s)",
                    (worker, ids, [r[1] for r in rows]),
                ).fetchall()
                assert len(done) == len(ids)


def test_concurrent_claimers_never_share_a_job(conn: psycopg.Connection, dsn: str) -> None:
    conn.execute(
        "select public.enqueue_job('noop', jsonb_build_object('i', g), now(), g %% 3)"
        " from generate_series(1, %s) g",
        (N_JOBS,),
    )
    start = threading.Barrier(N_WORKERS)
    with ThreadPoolExecutor(N_WORKERS) as pool:
        futures = [pool.submit(_claimer, dsn, f"w{i}", start, i) for i in range(N_WORKERS)]
        per_worker = {f"w{i}": f.result(timeout=60) for i, f in enumerate(futures)}

    claimed = [job_id for ids in per_worker.values() for job_id in ids]
    dupes = [job_id for job_id, n in Counter(claimed).items() if n > 1]
    assert dupes == [], f"{len(dupes)} jobs claimed more than once, e.g. {dupes[:5]}"
    assert len(claimed) == N_JOBS
    # Really concurrent: the work was spread over several claimers.
    assert sum(1 for ids in per_worker.values() if ids) >= 2

    # The table agrees: every job claimed exactly once, by the worker that says it has it.
    assert scalar(conn, "select count(*) from public.jobs where status = 'queued'") == 0
    assert scalar(conn, "select count(*) from public.jobs where attempts <> 1") == 0
    holder = {job_id: w for w, ids in per_worker.items() for job_id in ids}
    for job_id, locked_by in conn.execute(
        "select id, locked_by from public.jobs where status = 'running'"
    ):
        assert locked_by == holder[job_id]
    statuses = dict(conn.execute("select status, count(*) from public.jobs group by status"))
    assert set(statuses) <= {"running", "succeeded"}
    assert sum(statuses.values()) == N_JOBS


def test_concurrent_enqueue_with_the_same_dedupe_keys(conn: psycopg.Connection, dsn: str) -> None:
    keys = [f"k{i}" for i in range(200)]
    start = threading.Barrier(6)

    def enqueuer(seed: int) -> dict[str, int]:
        order = keys[:]
        random.Random(seed).shuffle(order)
        with psycopg.connect(dsn, autocommit=True) as c:
            start.wait()
            return {
                k: c.execute(
                    "select public.enqueue_job('noop', '{}', null, 0, %s)", (k,)
                ).fetchone()[0]
                for k in order
            }

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(enqueuer, range(6), timeout=60))
    assert scalar(conn, "select count(*) from public.jobs") == len(keys)
    for k in keys:
        assert len({r[k] for r in results}) == 1, f"dedupe key {k} got several ids"
