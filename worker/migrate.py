"""Apply `supabase/migrations/*.sql` the way `supabase db push` does.

Applied versions are recorded in `supabase_migrations.schema_migrations` with the same columns
the Supabase CLI uses, so the CLI and `chirpbase db migrate` agree on what has run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "supabase" / "migrations"
_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")

_HISTORY_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
);
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in version order; a misnamed file is an error, not silently skipped."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(
                f"migration file {path.name!r} must be named YYYYMMDDHHMMSS_lower_snake_name.sql"
            )
        found.append(Migration(m["version"], m["name"], path))
    return found


def applied_versions(conn: psycopg.Connection) -> set[str]:
    """Versions recorded as applied (empty when the history table does not exist yet)."""
    row = conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return set()
    return {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}


def pending(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations not applied yet."""
    done = applied_versions(conn)
    return [m for m in discover(directory) if m.version not in done]


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR, *, reapply: bool = False) -> list[str]:
    """Apply pending migrations (or all with `reapply`), each in its own transaction.

    Returns the versions applied. Every migration is written to be re-runnable, which
    `reapply` exercises. A migration already applied is replayed with function bodies
    unchecked (`check_function_bodies = off`, as pg_restore does): its old definitions may
    name a column whose type a later migration changed (jobs.lease_token, uuid then bigint),
    and that later migration, replayed after it, defines them again. A first application is
    always checked.
    """
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_HISTORY_DDL)
        done = applied_versions(conn)
        todo = discover(directory) if reapply else pending(conn, directory)
        for mig in todo:
            with conn.transaction():
                if mig.version in done:
                    conn.execute("set local check_function_bodies = off")
                conn.execute(mig.sql.encode())  # trusted file with many statements
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements)"
                    " values (%s, %s, %s) on conflict (version) do nothing",
                    (mig.version, mig.name, [mig.sql]),
                )
            applied.append(mig.version)
    return applied
