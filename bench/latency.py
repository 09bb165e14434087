"""Worker latency: committed `jobs` insert → handler start, with and without the doorbell.

    uv run python -m bench.latency [--jobs 1000] [--poll 1.0]

Runs a real worker process against the sandbox (Realtime stand-in fed by logical decoding) on a
scratch database, inserts no-op jobs one at a time and reads each job's claim time from the
database (both clocks are the database's). The same workload then runs with the doorbell off,
so the worker only finds jobs by its fallback poll. Also prints the worker's idle RSS and its
time from process start to ready.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from sandbox.stack import ThreadedSandbox  # noqa: E402
from tests import pg  # noqa: E402
from tests.processes import WorkerProcess  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_case(
    stack_env: dict[str, str], dsn: str, jobs: int, *, doorbell: bool, poll: float
) -> list[float]:
    env = {
        **stack_env,
        "DOORBELL_ENABLED": str(doorbell).lower(),
        "POLL_INTERVAL_S": str(poll),
        "LOG_LEVEL": "WARNING",
    }
    worker = WorkerProcess(
        env, name=f"bench-{'bell' if doorbell else 'poll'}", kinds="noop"
    ).start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 15
        while doorbell and time.monotonic() < deadline:
            h = worker.health()
            if h and h[1]["doorbell"]["connected"]:
                break
            time.sleep(0.05)
        with psycopg.connect(dsn, autocommit=True) as conn:
            ids = []
            for _ in range(jobs):
                ids.append(conn.execute("select public.enqueue_job('noop')").fetchone()[0])
                time.sleep(0.01 if doorbell else poll / 20)  # a steady trickle, not a burst
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = conn.execute(
                    "select count(*) from public.jobs where id = any(%s) and started_at is not null",
                    (ids,),
                ).fetchone()[0]
                if done == len(ids):
                    break
                time.sleep(0.1)
            rows = conn.execute(
                "select extract(epoch from started_at - created_at) from public.jobs where id = any(%s)",
                (ids,),
            ).fetchall()
    finally:
        worker.stop()
    return [float(r[0]) * 1000 for r in rows]


def startup_and_rss(stack_env: dict[str, str]) -> tuple[float, float, int]:
    env = {**stack_env, "LOG_LEVEL": "INFO"}
    t0 = time.monotonic()
    worker = WorkerProcess(env, name="bench-idle").start()
    try:
        worker.wait_ready()
        ready_s = time.monotonic() - t0
        time.sleep(3)  # let it settle into idle before measuring memory
        assert worker.proc is not None
        status = Path(f"/proc/{worker.proc.pid}/status").read_text()
        rss_kb = int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
        )
        log = worker.output()
        marker = "ready in "
        in_process_ms = (
            float(log.split(marker, 1)[1].split(" ms", 1)[0]) if marker in log else float("nan")
        )
    finally:
        worker.stop()
    return ready_s, in_process_ms, rss_kb


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="fallback poll interval (s) for the polling-only run",
    )
    args = parser.parse_args()

    pg.start_cluster()
    template = pg.build_template()
    name = template.clone()
    try:
        with ThreadedSandbox(pg.admin_dsn(name)) as stack:
            env = stack.env(pg.app_dsn(name))
            bell = run_case(env, pg.app_dsn(name), args.jobs, doorbell=True, poll=15.0)
            polled = run_case(
                env, pg.app_dsn(name), max(args.jobs // 5, 50), doorbell=False, poll=args.poll
            )
            ready_s, ready_ms, rss_kb = startup_and_rss(env)
    finally:
        pg.drop_database(name)
        pg.drop_database(template.name)

    print(f"\nchirpbase worker latency: committed insert -> handler start ({args.jobs} jobs)")
    print(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'jobs':>8}")
    for label, values in (
        ("doorbell (Realtime)", bell),
        (f"polling only ({args.poll:g} s)", polled),
    ):
        print(
            f"{label:28}{statistics.median(values):10.1f}{_pct(values, 0.99):10.1f}{max(values):10.1f}{len(values):8d}"
        )
    ratio = _pct(polled, 0.99) / max(_pct(bell, 0.99), 1e-9)
    print(
        f"\np99 polling / p99 doorbell = {ratio:.1f}x   (goal: doorbell p99 < 100 ms -> "
        f"{'met' if _pct(bell, 0.99) < 100 else 'NOT met'})"
    )
    print(
        f"start to ready: {ready_s:.2f} s from process spawn ({ready_ms:.0f} ms inside the worker); "
        f"goal < 2 s -> {'met' if ready_s < 2 else 'NOT met'}"
    )
    print(
        f"idle RSS: {rss_kb / 1024:.0f} MB; goal < 120 MB -> {'met' if rss_kb / 1024 < 120 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
