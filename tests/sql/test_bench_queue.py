"""The queue benchmarks keep working: their chirpbase and pgmq workloads on a small scale.

graphile-worker's side needs Node.js and an npm install (scripts/graphile-worker.sh): the
benchmark itself exercises it, the test suite does not.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg import sql

from bench import _queue, queue_peers, queue_throughput
from tests import pg
from tests.sql.helpers import scalar


async def test_bench_chirpbase_workload_completes_every_job(dsn: str) -> None:
    run = await queue_throughput.run_chirpbase(dsn, 600, workers=2, batch=50)
    assert run.jobs == 600 and run.process_s > 0 and run.enqueue_s > 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert scalar(conn, "select count(*) from public.jobs where status <> 'succeeded'") == 0
        assert scalar(conn, "select count(*) from public.jobs where attempts <> 1") == 0


def test_bench_latency_probe(dsn: str) -> None:
    out = queue_throughput.latency_runs(dsn, samples=40, finished=2000)
    p50, p99 = out["finished"]  # type: ignore[misc]
    assert 0 < p50 <= p99
    assert out["uses_claim_index"] == 1.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert scalar(conn, "select count(*) from public.jobs where status = 'succeeded'") == 2000


def test_percentile() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert _queue.percentile(samples, 50) in (50.0, 51.0)
    assert _queue.percentile(samples, 99) == 99.0
    assert _queue.percentile([3.0], 99) == 3.0


# the claim/complete adapter ------------------------------------------------------------------


async def test_adapter_reads_the_schema_it_runs_against(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        queue = await _queue.ChirpbaseQueue.detect(conn)
        cur = await conn.execute(
            "select exists (select 1 from pg_attribute where attrelid = 'public.jobs'::regclass"
            " and attname = 'lease_token')"
        )
        row = await cur.fetchone()
        assert row is not None and queue.fenced is row[0]
        await conn.execute("select public.enqueue_jobs('noop', array['{}', '{}']::jsonb[])")
        claims = await queue.claim(conn, "w1", 5)
        assert len(claims) == 2
        assert all((c.token is not None) is queue.fenced for c in claims)
        # Another worker completes nothing it does not hold; the holder completes both.
        assert await queue.complete(conn, "w2", claims) == 0
        assert await queue.complete(conn, "w1", claims) == 2
        assert await queue.complete(conn, "w1", claims) == 0


def test_adapter_passes_lease_tokens_to_a_fenced_complete_jobs() -> None:
    fenced = _queue._complete_query(
        [(["worker_id", "ids"], ["text", "bigint[]"]),
         (["worker_id", "ids", "lease_tokens"], ["text", "bigint[]", "bigint[]"])],
        fenced=True,
    )  # fmt: skip
    text = fenced.as_string(None)
    assert '"lease_tokens" => %(tokens)s' in text and '"ids" => %(ids)s' in text
    plain = _queue._complete_query([(["worker_id", "ids"], ["text", "bigint[]"])], fenced=False)
    assert "tokens" not in plain.as_string(None)
    with pytest.raises(RuntimeError, match="expected one complete_jobs with lease tokens"):
        _queue._complete_query([(["worker_id", "ids"], ["text", "bigint[]"])], fenced=True)
    with pytest.raises(RuntimeError, match="argument 3"):
        _queue._complete_query(
            [(["worker_id", "ids", "claims"], ["text", "bigint[]", "jsonb"])], fenced=False
        )


# the peer workloads ---------------------------------------------------------------------------


def _settings(jobs: int) -> queue_peers.Settings:
    return queue_peers.Settings(
        jobs=jobs, workers=2, batch=50, latency_samples=20,
        gw_concurrency=24, gw_local_queue=500, gw_pools=2, gw_complete_delay=0,
    )  # fmt: skip


def test_peer_bench_chirpbase_run_and_probe(dsn: str) -> None:
    run = queue_peers.chirpbase_system(dsn)
    queue_peers.measure([run], _settings(500), rounds=1)
    [measured] = run.figures.runs
    assert measured.jobs == 500 and len(measured.claim_ms) >= 5
    assert all(len(v) == 20 for v in run.figures.probe_ms.values())
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The last probe claimed warm-up + samples of its 500-job backlog, one at a time.
        left = 500 - queue_peers.LATENCY_WARMUP - 20
        assert scalar(conn, "select count(*) from public.jobs where status = 'queued'") == left
        assert scalar(conn, "select count(*) from public.jobs where status = 'succeeded'") == (
            500 - left
        )


def test_peer_bench_pgmq_run_and_probe() -> None:
    pg.start_cluster()
    name = f"bench_pgmq_test_{os.getpid()}"
    try:
        dsn, version = queue_peers.pgmq_db(name)
        assert version.count(".") == 2
        system = queue_peers.pgmq_system(dsn)
        queue_peers.measure([system], _settings(500), rounds=1)
        [measured] = system.figures.runs
        assert measured.jobs == 500 and len(measured.claim_ms) >= 5
        with psycopg.connect(dsn, autocommit=True) as conn:
            table = sql.Identifier("pgmq", f"q_{queue_peers.PGMQ_QUEUE}")
            row = conn.execute(sql.SQL("select count(*) from {}").format(table)).fetchone()
            assert row == (500 - queue_peers.LATENCY_WARMUP - 20,)
    finally:
        _queue.drop_db(name)


def test_cluster_cpu_counts_the_work_of_backends_that_have_exited(dsn: str) -> None:
    cpu = _queue.ClusterCpu.of(pg.admin_dsn())
    assert cpu is not None  # the local stack runs on this machine
    before = cpu.seconds()
    with psycopg.connect(dsn, autocommit=True) as conn:  # a backend that exits before we look
        conn.execute("select count(*) from generate_series(1, 3000000)")
    cpu.settle(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    assert cpu.seconds() - before >= 0.05
    assert _queue.ClusterCpu.of("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1") is None
