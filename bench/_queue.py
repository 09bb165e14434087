"""What the queue benchmarks share: chirpbase's claim/complete adapter, scratch databases, figures.

`ChirpbaseQueue` is the one place that knows the shape of chirpbase's claim and complete calls.
It reads the schema it runs against: when `jobs.lease_token` exists, every claim returns its
fencing token and `complete_jobs` is called with the tokens of the claims it completes (a stale
token completes nothing); on a schema without fencing the same consumer code calls the
token-less `complete_jobs(worker_id, ids)`. `fenced` says which one a run measured, and the
benchmarks print it. Tokens are passed back as the claim returned them (a bigint in the current
schema, a UUID in the first fenced one).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from sandbox import localdb
from worker.migrate import migrate

T = TypeVar("T")

# Arguments of complete_jobs this adapter can fill, by name as the catalog names them.
_FILLS = {"worker_id": "worker_id", "ids": "ids", "lease_tokens": "tokens"}


@dataclass(frozen=True)
class Claim:
    """One claimed job: its id and, when the schema has fencing, the claim's lease token."""

    id: int
    token: object = None  # the claim's lease token, as claim_jobs returned it


@dataclass(frozen=True)
class ChirpbaseQueue:
    """chirpbase's `claim_jobs` / `complete_jobs` as the benchmark's consumers call them."""

    fenced: bool
    claim_query: sql.Composed
    complete_query: sql.Composed
    lease_s: int = 60

    @classmethod
    async def detect(cls, conn: psycopg.AsyncConnection[Any], lease_s: int = 60) -> ChirpbaseQueue:
        cur = await conn.execute(
            "select exists (select 1 from pg_catalog.pg_attribute"
            " where attrelid = 'public.jobs'::regclass and attname = 'lease_token'"
            " and not attisdropped)"
        )
        row = await cur.fetchone()
        fenced = bool(row and row[0])
        cur = await conn.execute(
            "select p.proargnames, array(select format_type(t, null)"
            "   from unnest(p.proargtypes) with ordinality u(t, i) order by i)"
            " from pg_catalog.pg_proc p"
            " where p.pronamespace = 'public'::regnamespace and p.proname = 'complete_jobs'"
        )
        signatures = [(list(names or []), list(types)) for names, types in await cur.fetchall()]
        claim = sql.SQL(
            "select id, {token} from public.claim_jobs(%s, array['noop'], %s,"
            " make_interval(secs => {lease}))"
        ).format(
            token=sql.SQL("lease_token" if fenced else "null::uuid"), lease=sql.Literal(lease_s)
        )
        return cls(fenced, claim, _complete_query(signatures, fenced), lease_s)

    async def claim(
        self, conn: psycopg.AsyncConnection[Any], worker_id: str, max_jobs: int
    ) -> list[Claim]:
        cur = await conn.execute(self.claim_query, (worker_id, max_jobs), prepare=True)
        return [Claim(r[0], r[1]) for r in await cur.fetchall()]

    async def complete(
        self, conn: psycopg.AsyncConnection[Any], worker_id: str, claims: Sequence[Claim]
    ) -> int:
        """Mark the claims succeeded; returns how many the queue accepted."""
        params = {
            "worker_id": worker_id,
            "ids": [c.id for c in claims],
            "tokens": [c.token for c in claims],
        }
        cur = await conn.execute(self.complete_query, params, prepare=True)
        row = await cur.fetchone()
        return int(row[0]) if row else 0


def _complete_query(signatures: list[tuple[list[str], list[str]]], fenced: bool) -> sql.Composed:
    """`select count(*) from public.complete_jobs(...)`, arguments named as the catalog names them.

    With fencing the overload that takes the tokens (`lease_tokens`) is the one to call; the
    others are what a schema without fencing has.
    """
    wanted = [s for s in signatures if ("lease_tokens" in s[0]) == fenced]
    if len(wanted) != 1:
        found = ", ".join(f"complete_jobs({', '.join(t)})" for _, t in signatures) or "none"
        raise RuntimeError(
            f"bench: expected one complete_jobs {'with' if fenced else 'without'} lease tokens,"
            f" found {found}; update bench/_queue.py to the queue API"
        )
    names, types = wanted[0]
    args = []
    for i, typ in enumerate(types):
        fill = _FILLS.get(names[i]) if i < len(names) else None
        if fill is None:
            raise RuntimeError(f"bench: complete_jobs argument {i + 1} ({typ}) is not one it knows")
        args.append(sql.SQL("{} => {}").format(sql.Identifier(names[i]), sql.Placeholder(fill)))
    return sql.SQL("select count(*) from public.complete_jobs({})").format(sql.SQL(", ").join(args))


# chirpbase workload ------------------------------------------------------------------------------


@dataclass
class Run:
    """One system's run: enqueue and drain times, and the batch claims it made (non-empty ones:
    round trip in ms, and the jobs each returned)."""

    enqueue_s: float
    process_s: float
    jobs: int
    claim_ms: list[float] = field(default_factory=list)
    claim_rows: list[int] = field(default_factory=list)
    db_cpu_s: float | None = None  # the database's CPU time for the run (ClusterCpu)

    @property
    def total_s(self) -> float:
        return self.enqueue_s + self.process_s

    def rate(self, seconds: float) -> float:
        return self.jobs / seconds if seconds > 0 else float("inf")


async def chirpbase_enqueue(dsn: str, n: int, chunk: int = 1000) -> float:
    """N no-op jobs through `enqueue_jobs`, one call per chunk, payloads sent by the client."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            payloads = [Jsonb({"n": i}) for i in range(start, min(n, start + chunk))]
            await conn.execute(
                "select count(*) from public.enqueue_jobs('noop', %s::jsonb[])", (payloads,)
            )
        return time.perf_counter() - t0


async def consume(
    claim: Callable[[], Awaitable[Sequence[T]]],
    complete: Callable[[Sequence[T]], Awaitable[int]],
    run: Run | None = None,
) -> int:
    """A consumer's loop, whatever the queue: claim a batch, run each job (a no-op), complete the
    batch; until a claim comes back empty. Returns the jobs completed.

    With `run`, each non-empty claim's round trip and size are recorded in it.
    """
    done = 0
    while True:
        t0 = time.perf_counter()
        claims = await claim()
        if not claims:
            return done
        if run is not None:
            run.claim_ms.append((time.perf_counter() - t0) * 1000)
            run.claim_rows.append(len(claims))
        for _ in claims:
            await asyncio.sleep(0)  # the no-op handler
        accepted = await complete(claims)
        if accepted != len(claims):
            raise RuntimeError(f"the queue accepted {accepted} of {len(claims)} completions")
        done += accepted


async def chirpbase_consumer(dsn: str, worker_id: str, batch: int, run: Run | None = None) -> int:
    """One chirpbase consumer on its own connection (see `consume`)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        queue = await ChirpbaseQueue.detect(conn)
        return await consume(
            lambda: queue.claim(conn, worker_id, batch),
            lambda claims: queue.complete(conn, worker_id, claims),
            run,
        )


async def run_chirpbase(dsn: str, n: int, workers: int, batch: int, chunk: int = 1000) -> Run:
    """Enqueue N no-op jobs, drain them with W consumers; checks every job succeeded once."""
    run = Run(await chirpbase_enqueue(dsn, n, chunk), 0.0, n)
    t0 = time.perf_counter()
    counts = await asyncio.gather(
        *(chirpbase_consumer(dsn, f"bench-{i}", batch, run) for i in range(workers))
    )
    run.process_s = time.perf_counter() - t0
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "select count(*) from public.jobs where status = 'succeeded' and attempts = 1"
        )
        row = await cur.fetchone()
    if sum(counts) != n or not row or row[0] != n:
        raise RuntimeError(f"chirpbase: {sum(counts)} completed, {row} succeeded once, of {n}")
    return run


class ClusterCpu:
    """CPU seconds the local PostgreSQL cluster has used: its postmaster, its live processes
    (backends, WAL writer, autovacuum) and the processes it has reaped (backends that exited,
    counted in the postmaster's children times). A difference of two readings is what a run
    cost the database, a figure that waiting for a busy CPU does not inflate as it does wall
    time. `of()` is None when the server is not on this machine (or /proc is not readable).
    """

    def __init__(self, admin_dsn: str, postmaster_pid: int):
        self.admin_dsn = admin_dsn
        self.pid = postmaster_pid
        self.tick = os.sysconf("SC_CLK_TCK")

    @classmethod
    def of(cls, admin_dsn: str) -> ClusterCpu | None:
        try:
            with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("show data_directory").fetchone()
            pid = int((Path(str(row[0] if row else "")) / "postmaster.pid").read_text().split()[0])
            cpu = cls(admin_dsn, pid)
            cpu.seconds()
        except (OSError, ValueError, IndexError, psycopg.Error):
            return None
        return cpu

    def settle(self, dbname: str, timeout: float = 5.0) -> None:
        """Wait until no backend serves `dbname`: a backend still exiting would be counted in
        neither reading, or in both."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "select count(*) from pg_stat_activity where datname = %s", (dbname,)
                ).fetchone()
                if row and row[0] == 0:
                    return
                time.sleep(0.01)

    def seconds(self) -> float:
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone while we looked
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == self.pid:
                ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif ppid == self.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / self.tick


# figures and scratch databases -----------------------------------------------------------------


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def create_db(name: str) -> None:
    """An empty scratch database owned by `postgres` (the app role, as on Supabase)."""
    drop_db(name)
    with psycopg.connect(localdb.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} owner postgres").format(sql.Identifier(name)))


def drop_db(name: str) -> None:
    localdb.drop_database(name)


def chirpbase_db(name: str) -> str:
    """A scratch database as on Supabase (bootstrap) with chirpbase's migrations; its app DSN."""
    create_db(name)
    localdb.bootstrap(name)
    migrate(localdb.app_dsn(name))
    return localdb.app_dsn(name)
