"""bench/queue_throughput.py keeps working: its chirpbase workload and latency probe on a small scale."""

from __future__ import annotations

import psycopg

from bench import queue_throughput as bench
from tests.sql.helpers import scalar


async def test_bench_chirpbase_workload_completes_every_job(dsn: str) -> None:
    run = await bench.run_chirpbase(dsn, 600, workers=2, batch=50)
    assert run.jobs == 600 and run.process_s > 0 and run.enqueue_s > 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert scalar(conn, "select count(*) from public.jobs where status <> 'succeeded'") == 0
        assert scalar(conn, "select count(*) from public.jobs where attempts <> 1") == 0


def test_bench_latency_probe(dsn: str) -> None:
    out = bench.latency_runs(dsn, samples=40, finished=2000)
    p50, p99 = out["finished"]  # type: ignore[misc]
    assert 0 < p50 <= p99
    assert out["uses_claim_index"] == 1.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert scalar(conn, "select count(*) from public.jobs where status = 'succeeded'") == 2000


def test_percentile() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert bench.percentile(samples, 50) in (50.0, 51.0)
    assert bench.percentile(samples, 99) == 99.0
    assert bench.percentile([3.0], 99) == 3.0
