"""The doorbell under a burst: one statement inserts 1,000 jobs; what reaches the workers.

    uv run python -m bench.doorbell_burst [--jobs 1000] [--workers 3] [--bursts 5]

SANDBOX. A scratch database (bootstrap + migrations: `jobs` is in the `supabase_realtime`
publication), the Realtime stand-in (sandbox/realtime/, fed from the database by logical
decoding with wal2json) served in this process, and W worker doorbells, each in its own process
as worker replicas are: `worker.runtime.doorbell.Doorbell` through the real realtime-py client,
exactly as the worker constructs it, counting the `jobs` rings it gets.

Each burst is one statement (`enqueue_jobs` with N payloads, autocommit). Measured per burst:
the `postgres_changes` messages the stand-in pushed (Realtime sends one per changed row per
subscriber; each worker reports once it has rung N times), and the time from the statement's
return (the commit) to each worker's first ring and to the moment every worker has seen all N.
A worker needs one ring to start claiming: the figure to compare is N rings per worker
against 1.

Today's doorbell is recorded here, not changed (DESIGN.md: "a doorbell that sends one Realtime
broadcast per statement instead of one postgres_changes event per row").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from aiohttp import web
from loguru import logger
from psycopg.types.json import Jsonb

from bench._queue import chirpbase_db, drop_db
from sandbox import localdb
from sandbox.gateway import create_gateway
from sandbox.realtime import REALTIME_STATE, RealtimeState

TIMEOUT_S = 60.0


# the worker side (a subprocess per worker) ------------------------------------------------------


async def client(url: str, expected: int) -> None:
    """One worker's doorbell: prints `ready`, then one JSON line per `expected` job rings."""
    from sandbox.keys import SERVICE_ROLE_KEY
    from worker.runtime.doorbell import Doorbell

    state: dict[str, Any] = {"count": 0, "first": None}
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def report(line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    def on_ring(table: str, _record: dict[str, Any]) -> None:
        if table == "*":
            if bell.database_subscribed:
                loop.call_soon(ready.set)
            return
        if table != "jobs":
            return
        now = time.monotonic()
        state["count"] += 1
        if state["first"] is None:
            state["first"] = now
        if state["count"] % expected == 0:
            report({"first": state["first"], "last": now, "count": state["count"]})
            state["first"] = None

    bell = Doorbell(url, SERVICE_ROLE_KEY, on_ring)
    task = asyncio.create_task(bell.run())
    await asyncio.wait_for(ready.wait(), TIMEOUT_S)
    report({"ready": True})
    # Run until the parent closes our stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    await bell.stop()
    await task


# the parent -------------------------------------------------------------------------------------


@dataclass
class Burst:
    sent: int  # postgres_changes messages the stand-in pushed
    first_ms: list[float]  # commit -> first ring, per worker
    all_ms: float  # commit -> the last worker's last ring


async def _line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    raw = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT_S)
    if not raw:
        raise RuntimeError("a doorbell client exited early")
    return dict(json.loads(raw))


async def run(db: str, jobs: int, workers: int, bursts: int) -> list[Burst]:
    app = create_gateway(localdb.admin_dsn(db), storage=False)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    state: RealtimeState = app[REALTIME_STATE]
    procs: list[asyncio.subprocess.Process] = []
    results: list[Burst] = []
    try:
        await asyncio.wait_for(state.wait_feed_ready(), TIMEOUT_S)
        for _ in range(workers):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.doorbell_burst", "--client", url,
                    "--jobs", str(jobs),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )
            )  # fmt: skip
        for p in procs:
            assert (await _line(p)).get("ready")
        payloads = [Jsonb({"n": i}) for i in range(jobs)]
        async with await psycopg.AsyncConnection.connect(
            localdb.app_dsn(db), autocommit=True
        ) as conn:
            for _ in range(bursts):
                sent_before = state.events_sent
                await conn.execute(
                    "select count(*) from public.enqueue_jobs('noop', %s::jsonb[])", (payloads,)
                )
                committed = time.monotonic()
                lines = await asyncio.gather(*(_line(p) for p in procs))
                results.append(
                    Burst(
                        sent=state.events_sent - sent_before,
                        first_ms=[(x["first"] - committed) * 1000 for x in lines],
                        all_ms=(max(x["last"] for x in lines) - committed) * 1000,
                    )
                )
                await conn.execute("truncate public.jobs")
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(p.wait(), 10)
            if p.returncode is None:
                p.kill()
        await runner.cleanup()
    return results


def quiet_logs() -> None:
    """Warnings and errors only: the stand-in and the doorbell log every (re)subscription."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-n", type=int, default=1000, help="jobs one statement inserts")
    parser.add_argument("--workers", "-w", type=int, default=3, help="subscribed workers")
    parser.add_argument("--bursts", "-b", type=int, default=5)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_logs()
    if args.client:
        asyncio.run(client(args.client, args.jobs))
        return 0

    localdb.start_cluster()
    started = time.perf_counter()
    db = f"bench_doorbell_{os.getpid()}"
    try:
        chirpbase_db(db)
        print(f"doorbell burst: {args.bursts} x {args.jobs:,} jobs, {args.workers} workers ...")
        bursts = asyncio.run(run(db, args.jobs, args.workers, args.bursts))
    finally:
        drop_db(db)

    med = statistics.median
    firsts = [x for b in bursts for x in b.first_ms]
    print()
    print(
        f"Doorbell burst (SANDBOX: Realtime stand-in, wal2json): one statement inserts "
        f"{args.jobs:,} jobs, {args.workers} workers subscribed, {args.bursts} bursts (medians)"
    )
    print(f"  postgres_changes messages pushed      {med(b.sent for b in bursts):>10,.0f}"
          f"   ({med(b.sent for b in bursts) / args.workers:,.0f} per worker)")  # fmt: skip
    print(f"  rings a worker needs to start claiming {1:>9}   ({args.jobs:,}x fewer than received)")
    print(f"  commit -> first ring, any worker      {med(firsts):>10.1f} ms")
    print(f"  commit -> every worker has seen all   {med(b.all_ms for b in bursts):>10.1f} ms"
          f"   (min {min(b.all_ms for b in bursts):.1f}, max {max(b.all_ms for b in bursts):.1f})")  # fmt: skip
    print(f"  total bench time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
