import psycopg


def test_migrated_clone_has_queue(conn: psycopg.Connection) -> None:
    job_id = conn.execute("select public.enqueue_job('noop', '{}'::jsonb)").fetchone()[0]
    claimed = conn.execute(
        "select id from public.claim_jobs('w', array['noop'], 10, '30 s')"
    ).fetchall()
    assert [r[0] for r in claimed] == [job_id]
