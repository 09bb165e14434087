"""Migrations: apply to an empty database, re-apply cleanly, record history, run as non-superuser."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests import pg
from tests.sql.helpers import Jsonb, scalar
from worker.migrate import MIGRATIONS_DIR, applied_versions, discover, migrate


def test_migration_files_are_named_and_ordered() -> None:
    migrations = discover()
    assert migrations, f"no migrations in {MIGRATIONS_DIR}"
    versions = [m.version for m in migrations]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_misnamed_migration_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "20260101000000_ok.sql").write_text("select 1;")
    (tmp_path / "add_stuff.sql").write_text("select 1;")
    with pytest.raises(ValueError, match="must be named"):
        discover(tmp_path)


def test_every_migration_applies_to_an_empty_database_and_reapplies(empty_db: str) -> None:
    dsn = pg.app_dsn(empty_db)
    expected = [m.version for m in discover()]

    assert migrate(dsn) == expected
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert applied_versions(conn) == set(expected)
        names = dict(
            conn.execute("select version, name from supabase_migrations.schema_migrations")
        )
        assert names == {m.version: m.name for m in discover()}
        statements = scalar(
            conn,
            "select statements[1] from supabase_migrations.schema_migrations where version = %s",
            (expected[0],),
        )
        assert statements == discover()[0].sql
        # An operator's change survives re-applying (defaults are inserted only when absent).
        conn.execute(
            "update public.configs set value = value || %s where key = 'persona'",
            (Jsonb({"name": "operator-set"}),),
        )
        before = conn.execute(
            "select (select count(*) from public.jobs), (select count(*) from public.configs),"
            " (select count(*) from storage.buckets),"
            " (select count(*) from pg_publication_tables where pubname = 'supabase_realtime')"
        ).fetchone()

    # Nothing pending: a second run applies nothing.
    assert migrate(dsn) == []
    # Every migration is re-runnable as is.
    assert migrate(dsn, reapply=True) == expected
    assert migrate(dsn, reapply=True) == expected

    with psycopg.connect(dsn, autocommit=True) as conn:
        assert scalar(conn, "select count(*) from supabase_migrations.schema_migrations") == len(
            expected
        )
        after = conn.execute(
            "select (select count(*) from public.jobs), (select count(*) from public.configs),"
            " (select count(*) from storage.buckets),"
            " (select count(*) from pg_publication_tables where pubname = 'supabase_realtime')"
        ).fetchone()
        assert after == before
        name = scalar(conn, "select value ->> 'name' from public.configs where key = 'persona'")
        assert name == "operator-set"
        # The queue still works after re-applying.
        job_id = scalar(conn, "select public.enqueue_job('noop')")
        claimed = conn.execute("select id from public.claim_jobs('w', array['noop'], 5)").fetchall()
        assert claimed == [(job_id,)]


def test_each_migration_applies_on_top_of_its_predecessors_alone(
    empty_db: str, tmp_path: Path
) -> None:
    """Migration k needs only migrations 1..k (what `supabase db push` sees mid-history)."""
    dsn = pg.app_dsn(empty_db)
    for mig in discover():
        (tmp_path / mig.path.name).write_text(mig.sql)
        assert migrate(dsn, tmp_path) == [mig.version]
    assert migrate(dsn) == []


def test_migrations_stop_at_a_failing_file_and_record_only_what_ran(
    empty_db: str, tmp_path: Path
) -> None:
    for m in discover():
        (tmp_path / m.path.name).write_text(m.sql)
    (tmp_path / "29991231235959_broken.sql").write_text("select * from no_such_table;")
    with pytest.raises(psycopg.errors.UndefinedTable):
        migrate(pg.app_dsn(empty_db), tmp_path)
    with psycopg.connect(pg.app_dsn(empty_db), autocommit=True) as conn:
        assert applied_versions(conn) == {m.version for m in discover()}


def test_migrations_run_as_the_non_superuser_postgres_role(conn: psycopg.Connection) -> None:
    user, is_super = conn.execute(
        "select current_user, r.rolsuper from pg_roles r where r.rolname = current_user"
    ).fetchone()
    assert user == "postgres"
    assert is_super is False
    # Everything chirpbase created belongs to that role (as after `supabase db push`).
    owners = conn.execute(
        "select distinct pg_get_userbyid(c.relowner) from pg_class c"
        " where c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    assert owners == [("postgres",)]
    # Superuser-only operations are refused to this role, so migrations needing them fail here.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("alter system set work_mem = '8MB'")
