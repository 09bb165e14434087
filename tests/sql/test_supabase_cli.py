"""The Supabase CLI and `chirpbase db migrate` agree: either one applies, the other finds nothing.

Operators provision with `supabase db push`; the worker image, which has no CLI, can use
`chirpbase db migrate`. The CLI is the reference: these tests run the pinned CLI
(scripts/supabase.sh) against real databases and hold the runner to what it does. The suite's
template database is itself pushed by the CLI (sandbox/localdb.py), so every other test runs on a
schema the CLI applied.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import pg
from worker.migrate import applied_versions, discover, migrate, pending

ALL = [m.version for m in discover()]


def _workdir(tmp_path: Path, migrations: list[Path], *extra: tuple[str, str]) -> Path:
    """A Supabase project folder holding some of the migrations (and extra files)."""
    folder = tmp_path / "supabase" / "migrations"
    folder.mkdir(parents=True)
    for path in migrations:
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    for name, sql in extra:
        (folder / name).write_text(sql, encoding="utf-8")
    return tmp_path


def _history(dbname: str) -> list[tuple[str, str]]:
    with psycopg.connect(pg.app_dsn(dbname)) as conn:
        return conn.execute(
            "select version, name from supabase_migrations.schema_migrations order by version"
        ).fetchall()


def _in_step(pairs: list[tuple[str, str]]) -> bool:
    return all(local == remote != "" for local, remote in pairs)


# What a migration leaves behind, read from the catalogs: two databases with equal digests have
# the same schema, privileges, seeded rows and publication, whoever applied the migrations.
_DIGEST = {
    "columns": """
        select table_name, column_name, data_type, is_nullable, column_default, ordinal_position
        from information_schema.columns where table_schema = 'public' order by 1, 6""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint
        where connamespace = 'public'::regnamespace order by 1, 2""",
    "indexes": "select indexname, indexdef from pg_indexes where schemaname = 'public' order by 1",
    "functions": """
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text
        from pg_proc p where p.pronamespace = 'public'::regnamespace order by 1""",
    "triggers": """
        select tgname, pg_get_triggerdef(oid) from pg_trigger where not tgisinternal
        and tgrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace)
        order by 1, 2""",
    "relations": """
        select relname, relkind, relrowsecurity, relacl::text, obj_description(oid, 'pg_class')
        from pg_class where relnamespace = 'public'::regnamespace order by 1""",
    "policies": "select tablename, policyname, qual, with_check from pg_policies order by 1, 2",
    "views": "select viewname, definition from pg_views where schemaname = 'public' order by 1",
    "publication": "select schemaname, tablename from pg_publication_tables order by 1, 2",
    "buckets": "select id, name, public, file_size_limit from storage.buckets order by 1",
    "configs": "select key, value from public.configs order by 1",
    "history": "select version, name from supabase_migrations.schema_migrations order by 1",
}


def _digest(dbname: str) -> dict[str, list[Any]]:
    with psycopg.connect(pg.admin_dsn(dbname)) as conn:
        return {k: conn.execute(sql).fetchall() for k, sql in _DIGEST.items()}  # type: ignore[arg-type]


def test_cli_applies_everything_and_the_runner_then_has_nothing_to_do(empty_db: str) -> None:
    assert pg.db_push(empty_db) == ALL
    dsn = pg.app_dsn(empty_db)
    with psycopg.connect(dsn) as conn:
        assert applied_versions(conn) == set(ALL)
        assert pending(conn) == []
    assert migrate(dsn) == []
    assert _history(empty_db) == [(m.version, m.name) for m in discover()]
    assert _in_step(pg.migration_list(empty_db))
    assert pg.db_push(empty_db) == []  # and the CLI agrees with itself


def test_runner_applies_everything_and_the_cli_then_has_nothing_to_do(
    empty_db: str, db_name: str
) -> None:
    assert migrate(pg.app_dsn(empty_db)) == ALL
    assert pg.db_push(empty_db) == []
    listed = pg.migration_list(empty_db)
    assert [local for local, _ in listed] == ALL
    assert _in_step(listed)
    # The same schema as the CLI built (`db_name` is a clone of the CLI-pushed template).
    runner, cli = _digest(empty_db), _digest(db_name)
    assert runner.keys() == cli.keys()
    for key in cli:
        assert runner[key] == cli[key], f"{key} differ between the runner and the CLI"


def test_the_runner_completes_a_history_the_cli_began(empty_db: str, tmp_path: Path) -> None:
    paths = [m.path for m in discover()]
    half = len(paths) // 2
    assert pg.db_push(empty_db, _workdir(tmp_path, paths[:half])) == ALL[:half]
    assert migrate(pg.app_dsn(empty_db)) == ALL[half:]
    assert _in_step(pg.migration_list(empty_db))
    assert pg.db_push(empty_db) == []


def test_the_cli_completes_a_history_the_runner_began(empty_db: str, tmp_path: Path) -> None:
    paths = [m.path for m in discover()]
    half = len(paths) // 2
    first = _workdir(tmp_path, paths[:half]) / "supabase" / "migrations"
    assert migrate(pg.app_dsn(empty_db), first) == ALL[:half]
    assert pg.db_push(empty_db) == ALL[half:]
    assert _in_step(pg.migration_list(empty_db))
    assert migrate(pg.app_dsn(empty_db)) == []


def test_migration_list_shows_what_either_side_lacks(db_name: str, tmp_path: Path) -> None:
    """The comparison the other tests rely on can fail: a local-only and a remote-only version."""
    paths = [m.path for m in discover()]
    workdir = _workdir(tmp_path, paths[:-1], ("29990101000000_later.sql", "select 1;"))
    listed = pg.migration_list(db_name, workdir)
    assert ("", ALL[-1]) in listed  # applied, missing from this checkout
    assert ("29990101000000", "") in listed  # in this checkout, not applied
    assert not _in_step(listed)


def test_a_migration_only_the_runner_can_apply_is_refused_by_the_cli(
    empty_db: str, tmp_path: Path
) -> None:
    """The CLI splits files into statements itself and sends each one alone; the runner sends a
    file whole. The CLI's splitter does not know backslash escapes in E'' strings, so this file
    runs through the runner and not through `supabase db push`. Because the test template is
    pushed by the CLI, such a migration in supabase/migrations fails the whole suite.
    """
    sql = (
        "create table public.probe (note text);\n"
        "insert into public.probe values (E'it\\'s; tricky');\n"
        "insert into public.probe values ('plain');\n"
    )
    workdir = _workdir(tmp_path, [m.path for m in discover()], ("29990101000000_probe.sql", sql))
    runner_db = f"{empty_db}_runner"
    pg.create_database(runner_db)
    try:
        pg.bootstrap(runner_db)
        applied = migrate(pg.app_dsn(runner_db), workdir / "supabase" / "migrations")
        assert applied == [*ALL, "29990101000000"]
    finally:
        pg.drop_database(runner_db)
    with pytest.raises(pg.SupabaseCliError, match="multiple commands into a prepared statement"):
        pg.db_push(empty_db, workdir)
    # What ran before the refused file stays applied and recorded; the refused one is not.
    assert [v for v, _ in _history(empty_db)] == ALL


def test_the_template_was_pushed_by_the_cli(conn: psycopg.Connection) -> None:
    """The CLI records the statements it split each file into; the runner records whole files."""
    recorded = dict(
        conn.execute("select version, statements from supabase_migrations.schema_migrations")
    )
    assert sorted(recorded) == ALL
    for m in discover():
        assert recorded[m.version] != [m.sql], f"{m.version} was applied by the runner"
    assert max(len(s) for s in recorded.values()) > 1


def _lint(dbname: str, *args: str) -> subprocess.CompletedProcess[str]:
    return pg.supabase(
        "db", "lint", "--db-url", pg.cli_url(dbname), "--level", "warning", "--fail-on",
        "warning", *args, check=False,
    )  # fmt: skip


def test_the_linter_fails_on_a_warning(db_name: str, admin_dsn: str) -> None:
    """`make lint` runs `supabase db lint --level warning --fail-on warning`: it does catch one."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists plpgsql_check with schema extensions")
        conn.execute("create schema probe authorization postgres")
    with psycopg.connect(pg.app_dsn(db_name), autocommit=True) as conn:
        conn.execute(
            "create function probe.clean() returns int language plpgsql"
            " as $$ begin return 1; end $$"
        )
    clean = _lint(db_name, "--schema", "probe")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with psycopg.connect(pg.app_dsn(db_name), autocommit=True) as conn:
        conn.execute(
            "create function probe.sloppy() returns int language plpgsql"
            " as $$ declare unused int; begin return 1; end $$"
        )
    found = _lint(db_name, "--schema", "probe")
    assert found.returncode != 0
    assert 'unused variable \\"unused\\"' in found.stdout
    assert "probe.sloppy" in found.stdout and "probe.clean" not in found.stdout


def test_trigger_functions_the_cli_skips_are_linted_too(db_name: str, admin_dsn: str) -> None:
    env = {**os.environ, "CHIRPBASE_LINT_DB": db_name, "CHIRPBASE_PG_PORT": str(pg.PORT)}
    script = ["bash", str(pg.ROOT / "scripts" / "pg.sh")]
    subprocess.run([*script, "lint-setup"], env=env, check=True, capture_output=True)
    ok = subprocess.run([*script, "lint-triggers"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "trigger functions:" in ok.stderr and "no findings" in ok.stderr
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("create schema probe authorization postgres")
    with psycopg.connect(pg.app_dsn(db_name), autocommit=True) as conn:
        conn.execute(
            "create function probe.touch() returns trigger language plpgsql"
            " as $$ begin new.no_such_column := now(); return new; end $$"
        )
        conn.execute(
            "create trigger probe_touch before update on public.configs"
            " for each row execute function probe.touch()"
        )
    # `supabase db lint` does not see the fault ...
    skipped = _lint(db_name, "--schema", "probe")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    # ... the trigger check does.
    bad = subprocess.run([*script, "lint-triggers"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "configs | probe.touch()" in bad.stderr
    assert "no_such_column" in bad.stderr
