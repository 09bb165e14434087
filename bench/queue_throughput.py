"""Queue benchmark: chirpbase's SQL queue API against procrastinate, on the local stack.

    uv run --group bench python bench/queue_throughput.py [--jobs 20000] [--workers 2] [--batch 100]

Everything runs in scratch databases that are created here and dropped at the end:

1. chirpbase: enqueue N no-op jobs through `enqueue_jobs` (one call per chunk of 1,000), then
   W worker connections each loop `claim_jobs(max => batch)` -> no-op -> `complete_jobs` until
   the queue is empty (the calls bench/_queue.py makes, with lease tokens when the schema has
   fencing).
2. procrastinate (its own schema, its own database): the same N no-op jobs deferred with
   `batch_defer_async`, then one worker with `concurrency=W` (its real App/worker API, as a
   deployment would run it) until the queue is empty.
3. Claim latency: one `claim_jobs(max => 1)` round trip, p50/p99 over many calls, on an empty
   table and with 1,000,000 finished jobs present (inserted with one `insert ... select
   generate_series`, then `vacuum analyze`).

Prints a table with jobs/s, the ratio chirpbase / procrastinate and the latency percentiles.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file (`python bench/x.py`), import the project from the repository root.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import psycopg  # noqa: E402

from bench._queue import (  # noqa: E402
    Run,
    chirpbase_db,
    create_db,
    drop_db,
    percentile,
    run_chirpbase,
)
from sandbox.localdb import PORT, app_dsn  # noqa: E402

GOAL_JOBS_PER_S = 3000
GOAL_RATIO = 1.5
WARMUP = 200  # claims before the latency samples are recorded


# procrastinate ----------------------------------------------------------------------------------


async def run_procrastinate(dsn: str, n: int, workers: int, chunk: int = 1000) -> Run:
    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    # "App is instantiated in the main Python module" matters to procrastinate's CLI, which
    # imports the app by path; not to an app run in-process as here.
    logging.getLogger("procrastinate.blueprints").addFilter(
        lambda r: getattr(r, "action", None) != "app_defined_in___main__"
    )
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=dsn, min_size=workers + 2, max_size=workers + 4
        )
    )

    @app.task(name="noop", queue="default")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            await noop.batch_defer_async(*({} for _ in range(min(chunk, n - start))))
        enqueue_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        await app.run_worker_async(
            concurrency=workers,
            wait=False,
            listen_notify=False,
            install_signal_handlers=False,
            delete_jobs="never",
        )
        process_s = time.perf_counter() - t0

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select count(*) from procrastinate_jobs where status = 'succeeded'"
        ).fetchone()
    if not row or row[0] != n:
        raise RuntimeError(f"procrastinate: {row} succeeded jobs, expected {n}")
    return Run(enqueue_s, process_s, n)


# claim latency ----------------------------------------------------------------------------------


def claim_latency(conn: psycopg.Connection, samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) of one claim_jobs(max => 1) round trip, with `samples` jobs due."""
    conn.execute(
        "select public.enqueue_job('noop', '{}'::jsonb, now() - interval '1 second')"
        " from generate_series(1, %s)",
        (samples + WARMUP,),
    )
    conn.execute("analyze public.jobs")
    timings: list[float] = []
    for i in range(samples + WARMUP):
        t0 = time.perf_counter()
        rows = conn.execute(
            "select id from public.claim_jobs('lat', array['noop'], 1, interval '60 seconds')",
            prepare=True,
        ).fetchall()
        elapsed = (time.perf_counter() - t0) * 1000
        if len(rows) != 1:
            raise RuntimeError("claim_jobs found no job during the latency run")
        if i >= WARMUP:  # the first calls warm caches and the prepared statement
            timings.append(elapsed)
    return percentile(timings, 50), percentile(timings, 99)


def latency_runs(dsn: str, samples: int, finished: int) -> dict[str, tuple[float, float] | float]:
    out: dict[str, tuple[float, float] | float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate public.jobs")
        out["empty"] = claim_latency(conn, samples)

        conn.execute("truncate public.jobs")
        t0 = time.perf_counter()
        conn.execute(
            "insert into public.jobs (kind, payload, status, attempts, max_attempts, run_at,"
            " started_at, finished_at, created_at, updated_at, result)"
            " select 'noop', '{}'::jsonb, 'succeeded', 1, 3, t, t, t, t, t, null"
            " from (select now() - make_interval(secs => g) as t"
            "       from generate_series(1, %s) g) s",
            (finished,),
        )
        conn.execute("vacuum analyze public.jobs")
        out["fill_s"] = time.perf_counter() - t0
        out["finished"] = claim_latency(conn, samples)
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select j.id from public.jobs j where j.status = 'queued'"
                " and j.run_at <= now() and j.kind = any(array['noop'])"
                " order by j.priority desc, j.run_at, j.id limit 1 for update skip locked"
            )
        )
        out["uses_claim_index"] = float("jobs_claim_idx" in plan)
    return out


# main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-n", type=int, default=20_000, help="no-op jobs per system")
    parser.add_argument("--workers", "-w", type=int, default=2, help="worker connections")
    parser.add_argument("--batch", "-b", type=int, default=100, help="claim batch size")
    parser.add_argument("--latency-samples", type=int, default=2000)
    parser.add_argument(
        "--finished", type=int, default=1_000_000, help="finished jobs present for the latency run"
    )
    parser.add_argument("--skip-procrastinate", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)

    started_pg = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg.sh"), "start"], capture_output=True, text=True
    )
    if started_pg.returncode != 0:
        sys.stderr.write(started_pg.stdout + started_pg.stderr)
        return 2

    tag = f"{os.getpid()}"
    cb_db, pr_db = f"bench_chirpbase_{tag}", f"bench_procrastinate_{tag}"
    started = time.perf_counter()
    try:
        chirpbase_db(cb_db)
        print(
            f"chirpbase: {args.jobs} no-op jobs, {args.workers} workers, claim batch "
            f"{args.batch} ...",
            flush=True,
        )
        cb = asyncio.run(run_chirpbase(app_dsn(cb_db), args.jobs, args.workers, args.batch))

        pr: Run | None = None
        if not args.skip_procrastinate:
            create_db(pr_db)
            print(
                f"procrastinate: {args.jobs} no-op jobs, worker concurrency {args.workers} ...",
                flush=True,
            )
            pr = asyncio.run(run_procrastinate(app_dsn(pr_db), args.jobs, args.workers))
            drop_db(pr_db)

        lat = None
        if not args.skip_latency:
            print(
                f"claim latency: {args.latency_samples} claims, then again with "
                f"{args.finished:,} finished jobs ...",
                flush=True,
            )
            lat = latency_runs(app_dsn(cb_db), args.latency_samples, args.finished)
    finally:
        drop_db(cb_db)
        drop_db(pr_db)

    print()
    print(
        f"Queue benchmark: N={args.jobs:,} no-op jobs, {args.workers} workers, "
        f"PostgreSQL on 127.0.0.1:{PORT}, {os.cpu_count()} CPUs"
    )
    rows = [
        ("enqueue (jobs/s)", cb.rate(cb.enqueue_s), pr.rate(pr.enqueue_s) if pr else None),
        ("claim + complete (jobs/s)", cb.rate(cb.process_s), pr.rate(pr.process_s) if pr else None),
        ("end to end (jobs/s)", cb.rate(cb.total_s), pr.rate(pr.total_s) if pr else None),
    ]
    print(f"  {'':<28}{'chirpbase':>12}{'procrastinate':>15}{'ratio':>9}")
    for label, a, b in rows:
        ratio = f"{a / b:>8.2f}x" if b else f"{'-':>9}"
        b_text = f"{b:>15,.0f}" if b else f"{'-':>15}"
        print(f"  {label:<28}{a:>12,.0f}{b_text}{ratio}")
    if lat is not None:
        e50, e99 = lat["empty"]  # type: ignore[misc]
        f50, f99 = lat["finished"]  # type: ignore[misc]
        print()
        print(f"  claim latency, 1 job per call   {'p50 (ms)':>10}{'p99 (ms)':>10}")
        print(f"  {'empty table':<32}{e50:>10.3f}{e99:>10.3f}")
        print(f"  {f'{args.finished:,} finished jobs':<32}{f50:>10.3f}{f99:>10.3f}")
        print(
            f"  (filled and vacuumed in {lat['fill_s']:.1f} s; claim query uses "
            f"jobs_claim_idx: {'yes' if lat['uses_claim_index'] else 'NO'})"
        )
    print()
    end_to_end = cb.rate(cb.total_s)
    ok = end_to_end >= GOAL_JOBS_PER_S
    print(
        f"  goal >= {GOAL_JOBS_PER_S:,} jobs/s end to end: {'met' if ok else 'NOT met'} "
        f"({end_to_end:,.0f})"
    )
    if pr:
        ratio = end_to_end / pr.rate(pr.total_s)
        ok = ok and ratio >= GOAL_RATIO
        print(
            f"  goal ratio chirpbase/procrastinate >= {GOAL_RATIO}: "
            f"{'met' if ratio >= GOAL_RATIO else 'NOT met'} ({ratio:.2f}x)"
        )
    print(f"  total bench time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
