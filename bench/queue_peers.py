"""Queue benchmark against the peers: chirpbase, pgmq (Supabase Queues) and graphile-worker.

    uv run --group bench python -m bench.queue_peers [--jobs 10000] [--workers 2] [--batch 100]

The same work for each, on the same PostgreSQL, in the same run: N no-op jobs enqueued in
chunks of 1,000 (payload `{"n": i}` sent by the client), then drained by W consumers that claim
in batches and complete in batches until the queue is empty. Runs are interleaved, A B C A B C
... (each round rotated: B C A, C A B), one scratch database per system (created here, dropped
at the end), tables emptied before each run; figures are medians over the rounds, after one
unmeasured warm-up round.

- chirpbase: `enqueue_jobs` per chunk; W asyncio consumers, one connection each:
  `claim_jobs(worker, ['noop'], B, 60 s)` -> no-op -> `complete_jobs` with the claims' lease
  tokens when the schema has fencing (bench/_queue.py reads the schema).
- pgmq (its SQL-only install, `pgmq.sql` as the PyPI package `pgmq` ships it): `send_batch`
  per chunk; W consumers: `read(queue, vt => 60, qty => B)` -> no-op -> `delete(queue, ids)`.
- graphile-worker (npm, exact version in bench/graphile/package.json, installed by
  scripts/graphile-worker.sh): `add_jobs` per chunk; its own runner (`runOnce`) with the
  batching its performance page recommends (local queue, completion batching), driven from
  Node by bench/graphile/drain.mjs.

Claim latency is measured twice: the batch claim round trips of the drain (client side, from
the call to the rows, non-empty claims only; graphile-worker's are its local-queue fetches), and
a 1-job-per-call probe on one connection (claim 1, complete it, repeat; graphile-worker: one
worker, no local queue, no completion batching), from a short queue and from a backlog of N
jobs, p50/p99 pooled over the rounds. Also the database's CPU time per job (the cluster's
processes, read from /proc around each run: enqueue, drain and the checks), which a busy
machine does not inflate as it does wall time. The goal (exit status 1 when missed):
chirpbase >= 1.0x each peer end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench._queue import (
    ChirpbaseQueue,
    ClusterCpu,
    Run,
    chirpbase_db,
    chirpbase_enqueue,
    consume,
    create_db,
    drop_db,
    percentile,
    run_chirpbase,
)
from sandbox import localdb

ROOT = Path(__file__).resolve().parent.parent
GRAPHILE = ROOT / "scripts" / "graphile-worker.sh"
GRAPHILE_DRIVER = ROOT / "bench" / "graphile" / "drain.mjs"
PGMQ_QUEUE = "bench"
CHUNK = 1000
LEASE_S = 60
LATENCY_WARMUP = 100
GOAL_RATIO = 1.0


@dataclass
class Settings:
    jobs: int
    workers: int
    batch: int
    latency_samples: int
    gw_concurrency: int
    gw_local_queue: int
    gw_pools: int
    gw_complete_delay: int


@dataclass
class Figures:
    """What one system measured over all rounds."""

    runs: list[Run] = field(default_factory=list)
    probe_ms: dict[str, list[float]] = field(default_factory=dict)

    def median(self, pick: Callable[[Run], float]) -> float:
        return statistics.median(pick(r) for r in self.runs)

    @property
    def claim_ms(self) -> list[float]:
        return [x for r in self.runs for x in r.claim_ms]

    @property
    def claim_rows(self) -> float:
        rows = [n for r in self.runs for n in r.claim_rows]
        return statistics.mean(rows) if rows else 0.0


# chirpbase ---------------------------------------------------------------------------------------


async def chirpbase_run(dsn: str, s: Settings) -> Run:
    return await run_chirpbase(dsn, s.jobs, s.workers, s.batch, CHUNK)


async def chirpbase_probe(dsn: str, depth: int, samples: int) -> list[float]:
    await chirpbase_enqueue(dsn, max(depth, samples + LATENCY_WARMUP), CHUNK)
    timings: list[float] = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        queue = await ChirpbaseQueue.detect(conn)
        for _ in range(samples + LATENCY_WARMUP):
            t0 = time.perf_counter()
            claims = await queue.claim(conn, "probe", 1)
            timings.append((time.perf_counter() - t0) * 1000)
            if len(claims) != 1 or await queue.complete(conn, "probe", claims) != 1:
                raise RuntimeError("chirpbase: the latency probe lost a job")
    return timings[LATENCY_WARMUP:]


def chirpbase_reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate public.jobs")


# pgmq --------------------------------------------------------------------------------------------


def pgmq_db(name: str) -> tuple[str, str]:
    """A scratch database with pgmq installed from its SQL file, and the queue; (dsn, version)."""
    from pgmq.install import get_embedded_install_sql, get_embedded_sql_version

    create_db(name)
    dsn = localdb.app_dsn(name)
    with psycopg.connect(dsn) as conn:
        conn.execute(get_embedded_install_sql())  # type: ignore[arg-type]
        conn.execute("select pgmq.create(%s)", (PGMQ_QUEUE,))
        conn.commit()
    return dsn, get_embedded_sql_version()


async def pgmq_enqueue(dsn: str, n: int) -> float:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        for start in range(0, n, CHUNK):
            payloads = [Jsonb({"n": i}) for i in range(start, min(n, start + CHUNK))]
            await conn.execute(
                "select count(*) from pgmq.send_batch(%s, %s::jsonb[])", (PGMQ_QUEUE, payloads)
            )
        return time.perf_counter() - t0


async def pgmq_consumer(dsn: str, batch: int, run: Run | None = None) -> int:
    """read(qty) -> no-op per message -> delete(ids), until a read comes back empty."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:

        async def read() -> list[int]:
            cur = await conn.execute(
                "select msg_id from pgmq.read(%s, %s, %s)",
                (PGMQ_QUEUE, LEASE_S, batch),
                prepare=True,
            )
            return [r[0] for r in await cur.fetchall()]

        async def delete(ids: Sequence[int]) -> int:
            cur = await conn.execute(
                "select count(*) from pgmq.delete(%s, %s::bigint[])",
                (PGMQ_QUEUE, list(ids)),
                prepare=True,
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await consume(read, delete, run)


async def pgmq_run(dsn: str, s: Settings) -> Run:
    run = Run(await pgmq_enqueue(dsn, s.jobs), 0.0, s.jobs)
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(pgmq_consumer(dsn, s.batch, run) for _ in range(s.workers)))
    run.process_s = time.perf_counter() - t0
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(f"select count(*) from pgmq.q_{PGMQ_QUEUE}")
        row = await cur.fetchone()
    if sum(counts) != s.jobs or not row or row[0] != 0:
        raise RuntimeError(f"pgmq: {sum(counts)} deleted of {s.jobs}, {row} left")
    return run


async def pgmq_probe(dsn: str, depth: int, samples: int) -> list[float]:
    await pgmq_enqueue(dsn, max(depth, samples + LATENCY_WARMUP))
    timings: list[float] = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for _ in range(samples + LATENCY_WARMUP):
            t0 = time.perf_counter()
            cur = await conn.execute(
                "select msg_id from pgmq.read(%s, %s, 1)", (PGMQ_QUEUE, LEASE_S), prepare=True
            )
            rows = await cur.fetchall()
            timings.append((time.perf_counter() - t0) * 1000)
            if len(rows) != 1:
                raise RuntimeError("pgmq: the latency probe found no message")
            await conn.execute(
                "select pgmq.delete(%s, %s::bigint)", (PGMQ_QUEUE, rows[0][0]), prepare=True
            )
    return timings[LATENCY_WARMUP:]


def pgmq_reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"truncate pgmq.q_{PGMQ_QUEUE}, pgmq.a_{PGMQ_QUEUE}")


# graphile-worker ---------------------------------------------------------------------------------


def graphile(config: dict[str, Any]) -> dict[str, Any]:
    """Run bench/graphile/drain.mjs once; its JSON answer."""
    proc = subprocess.run(
        ["bash", str(GRAPHILE), "node", str(GRAPHILE_DRIVER), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"graphile-worker driver failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def graphile_version() -> str:
    spec = json.loads((ROOT / "bench" / "graphile" / "package.json").read_text())
    return str(spec["dependencies"]["graphile-worker"])


def graphile_db(name: str) -> str:
    create_db(name)
    dsn = localdb.app_dsn(name)
    graphile({"dsn": dsn, "mode": "migrate"})
    return dsn


def graphile_run(dsn: str, s: Settings) -> Run:
    out = graphile(
        {
            "dsn": dsn,
            "mode": "run",
            "jobs": s.jobs,
            "chunk": CHUNK,
            "pools": s.gw_pools,
            "concurrency": s.gw_concurrency,
            "localQueueSize": s.gw_local_queue,
            "completeJobBatchDelay": s.gw_complete_delay,
            "maxPoolSize": s.gw_pools * (s.gw_concurrency + 1),
        }
    )
    if out["executed"] != s.jobs or out["remaining"] != 0:
        raise RuntimeError(
            f"graphile-worker: {out['executed']} ran of {s.jobs}, {out['remaining']} left"
        )
    claims = [(ms, n) for ms, n in zip(out["claim_ms"], out["claim_rows"], strict=True) if n > 0]
    return Run(
        out["enqueue_s"],
        out["process_s"],
        s.jobs,
        [float(ms) for ms, _ in claims],
        [int(n) for _, n in claims],
    )


def graphile_probe(dsn: str, depth: int, samples: int) -> list[float]:
    total = samples + LATENCY_WARMUP
    depth = max(depth, total)
    out = graphile({"dsn": dsn, "mode": "latency", "jobs": depth, "samples": total, "chunk": CHUNK})
    # The job running when the runner is stopped may still be in the table: never more.
    if out["executed"] < total or not depth <= out["executed"] + out["remaining"] <= depth + 1:
        raise RuntimeError(
            f"graphile-worker: the latency probe lost jobs: {out['executed']} ran,"
            f" {out['remaining']} left of {depth}"
        )
    return [float(x) for x in out["claim_ms"][LATENCY_WARMUP:total]]


def graphile_reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate graphile_worker._private_jobs cascade")


# the run -----------------------------------------------------------------------------------------


@dataclass
class System:
    name: str
    dsn: str
    run: Callable[[str, Settings], Run]
    probe: Callable[[str, int, int], list[float]]
    reset: Callable[[str], None]
    figures: Figures = field(default_factory=Figures)


def _asyncio_system(
    name: str,
    dsn: str,
    run: Callable[[str, Settings], Coroutine[Any, Any, Run]],
    probe: Callable[[str, int, int], Coroutine[Any, Any, list[float]]],
    reset: Callable[[str], None],
) -> System:
    """A system whose run and probe are coroutines, each given its own event loop."""
    return System(
        name,
        dsn,
        lambda d, s: asyncio.run(run(d, s)),
        lambda d, depth, n: asyncio.run(probe(d, depth, n)),
        reset,
    )


def chirpbase_system(dsn: str) -> System:
    return _asyncio_system("chirpbase", dsn, chirpbase_run, chirpbase_probe, chirpbase_reset)


def pgmq_system(dsn: str) -> System:
    return _asyncio_system("pgmq", dsn, pgmq_run, pgmq_probe, pgmq_reset)


def graphile_system(dsn: str) -> System:
    return System("graphile-worker", dsn, graphile_run, graphile_probe, graphile_reset)


def probes(s: Settings) -> dict[str, int]:
    """The 1-job claim probes: label -> jobs queued when it starts."""
    shallow = s.latency_samples + LATENCY_WARMUP
    return {f"{shallow:,} queued": shallow, f"{s.jobs:,} queued": s.jobs}


def measure(systems: list[System], s: Settings, rounds: int, cpu: ClusterCpu | None = None) -> None:
    warm = Settings(**{**s.__dict__, "jobs": max(s.batch * s.workers, s.jobs // 5)})
    for system in systems:  # one unmeasured round: caches, prepared statements, Node's JIT
        system.reset(system.dsn)
        system.run(system.dsn, warm)
    for r in range(rounds):
        # Interleaved, and rotated so that no system always runs first (A B C, B C A, C A B ...).
        for system in systems[r % len(systems) :] + systems[: r % len(systems)]:
            system.reset(system.dsn)
            before = cpu.seconds() if cpu else None
            run = system.run(system.dsn, s)
            if cpu and before is not None:
                cpu.settle(psycopg.conninfo.conninfo_to_dict(system.dsn)["dbname"])
                run.db_cpu_s = cpu.seconds() - before
            system.figures.runs.append(run)
            for label, depth in probes(s).items():
                system.reset(system.dsn)
                samples = system.probe(system.dsn, depth, s.latency_samples)
                system.figures.probe_ms.setdefault(label, []).extend(samples)
            print(
                f"  round {r + 1}/{rounds} {system.name:<16} {run.rate(run.total_s):>8,.0f} jobs/s"
                f" end to end ({run.rate(run.process_s):,.0f} drain)",
                flush=True,
            )


def report(systems: list[System], s: Settings, rounds: int, notes: list[str]) -> bool:
    cb, peers = systems[0], systems[1:]
    head = f"  {'':<34}" + "".join(f"{x.name:>17}" for x in systems)
    head += "".join(f"{'cb/' + p.name.split('-')[0]:>12}" for p in peers)
    print()
    print(
        f"Queue peers: N={s.jobs:,} no-op jobs, W={s.workers} consumers, batch {s.batch}, "
        f"{rounds} interleaved rounds (medians); PostgreSQL {localdb.HOST}:{localdb.PORT}, "
        f"{os.cpu_count()} CPUs"
    )
    for note in notes:
        print(f"  {note}")
    print(head)

    def row(label: str, values: list[float], fmt: str, higher_better: bool | None = True) -> None:
        line = f"  {label:<34}" + "".join(f"{v:>17{fmt}}" for v in values)
        for v in values[1:] if higher_better is not None else []:
            ratio = values[0] / v if higher_better else v / values[0]
            line += f"{ratio:>11.2f}x"
        print(line)

    rate = {
        "enqueue (jobs/s)": lambda r: r.rate(r.enqueue_s),
        "claim + complete (jobs/s)": lambda r: r.rate(r.process_s),
        "end to end (jobs/s)": lambda r: r.rate(r.total_s),
    }
    for label, pick in rate.items():
        row(label, [x.figures.median(pick) for x in systems], ",.0f")
    if all(r.db_cpu_s is not None for x in systems for r in x.figures.runs):
        values = [x.figures.median(lambda r: (r.db_cpu_s or 0.0) * 1e6 / r.jobs) for x in systems]
        row("database CPU per job (us)", values, ",.1f", higher_better=False)
    row("jobs per batch claim (mean)", [x.figures.claim_rows for x in systems], ",.0f", None)
    for q in (50, 99):
        values = [percentile(x.figures.claim_ms, q) for x in systems]
        row(f"batch claim p{q} (ms)", values, ".2f", higher_better=False)
    for label in probes(s):
        for q in (50, 99):
            values = [percentile(x.figures.probe_ms[label], q) for x in systems]
            row(f"1-job claim p{q}, {label} (ms)", values, ".2f", higher_better=False)
    print(
        "  (ratios: chirpbase / peer for rates; peer / chirpbase for latencies: > 1 favours chirpbase)"
    )
    print()
    ok = True
    cb_rate = cb.figures.median(rate["end to end (jobs/s)"])
    for p in peers:
        ratio = cb_rate / p.figures.median(rate["end to end (jobs/s)"])
        met = ratio >= GOAL_RATIO
        ok = ok and met
        print(
            f"  goal chirpbase/{p.name} >= {GOAL_RATIO:.1f}x end to end: "
            f"{'met' if met else 'NOT met'} ({ratio:.2f}x)"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", "-n", type=int, default=10_000, help="no-op jobs per run")
    parser.add_argument("--workers", "-w", type=int, default=2, help="consumers (connections)")
    parser.add_argument("--batch", "-b", type=int, default=100, help="claim batch size")
    parser.add_argument("--rounds", "-r", type=int, default=5)
    parser.add_argument("--latency-samples", type=int, default=500, help="1-job claims per round")
    parser.add_argument("--gw-concurrency", type=int, default=24, help="graphile concurrentJobs")
    parser.add_argument("--gw-local-queue", type=int, default=500, help="graphile localQueue.size")
    parser.add_argument("--gw-pools", type=int, default=None, help="graphile pools (default W)")
    parser.add_argument("--gw-complete-delay", type=int, default=0, help="completeJobBatchDelay")
    parser.add_argument("--skip-pgmq", action="store_true")
    parser.add_argument("--skip-graphile", action="store_true")
    args = parser.parse_args(argv)
    s = Settings(
        jobs=args.jobs,
        workers=args.workers,
        batch=args.batch,
        latency_samples=args.latency_samples,
        gw_concurrency=args.gw_concurrency,
        gw_local_queue=args.gw_local_queue,
        gw_pools=args.gw_pools or args.workers,
        gw_complete_delay=args.gw_complete_delay,
    )

    localdb.start_cluster()
    started = time.perf_counter()
    tag = os.getpid()
    names = {k: f"bench_{k}_{tag}" for k in ("chirpbase", "pgmq", "graphile")}
    notes: list[str] = []
    try:
        cb_dsn = chirpbase_db(names["chirpbase"])
        fenced = asyncio.run(_fenced(cb_dsn))
        notes.append(
            "chirpbase: claim_jobs + complete_jobs, "
            + (
                "leases with fencing: lease tokens passed to complete_jobs"
                if fenced
                else "leases, no fencing tokens in this schema (jobs.lease_token absent)"
            )
        )
        systems = [chirpbase_system(cb_dsn)]
        if not args.skip_pgmq:
            dsn, version = pgmq_db(names["pgmq"])
            notes.append(
                f"pgmq {version} (SQL-only install): send_batch, read(vt 60 s, qty {s.batch}), delete(ids)"
            )
            systems.append(pgmq_system(dsn))
        if not args.skip_graphile:
            dsn = graphile_db(names["graphile"])
            notes.append(
                f"graphile-worker {graphile_version()}: add_jobs; {s.gw_pools} runOnce pool(s),"
                f" concurrentJobs {s.gw_concurrency}, localQueue.size {s.gw_local_queue},"
                f" completeJobBatchDelay {s.gw_complete_delay}"
            )
            systems.append(graphile_system(dsn))
        print(
            f"queue peers: {', '.join(x.name for x in systems)}; {args.rounds} rounds ...",
            flush=True,
        )
        measure(systems, s, args.rounds, ClusterCpu.of(localdb.admin_dsn()))
    finally:
        for name in names.values():
            drop_db(name)
    ok = report(systems, s, args.rounds, notes)
    print(f"  total bench time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


async def _fenced(dsn: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return (await ChirpbaseQueue.detect(conn)).fenced


if __name__ == "__main__":
    raise SystemExit(main())
