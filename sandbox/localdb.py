"""The local PostgreSQL stack: one cluster, migrated template databases, clones, the cron database.

`scripts/pg.sh start` installs and starts PostgreSQL 15 + pg_cron + wal2json when needed. Each
pytest process builds its own template database and clones it for every test, so tests run in any
order and several pytest processes can share the cluster.

The template is provisioned the way an operator provisions a Supabase project: the bootstrap
(what Supabase already provides), then `supabase db push --db-url ... --include-all --yes` with
the pinned Supabase CLI (scripts/supabase.sh). Every test therefore runs on a schema the CLI
applied, and a migration that only works through `chirpbase db migrate` fails the whole suite.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from worker.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("CHIRPBASE_PG_PORT", "54329"))
BOOTSTRAP = ROOT / "scripts" / "bootstrap.sql"
SUPABASE_CLI = ROOT / "scripts" / "supabase.sh"
_counter = itertools.count()


def admin_dsn(dbname: str = "postgres") -> str:
    """Superuser (supabase_admin) connection string."""
    return f"postgresql://supabase_admin@{HOST}:{PORT}/{dbname}"


def app_dsn(dbname: str) -> str:
    """The worker's connection string: the non-superuser `postgres` role, as on Supabase."""
    return f"postgresql://postgres:postgres@{HOST}:{PORT}/{dbname}"


def cli_url(dbname: str) -> str:
    """`app_dsn` for the Supabase CLI, which insists on TLS unless told the server has none."""
    return f"{app_dsn(dbname)}?sslmode=disable"


class SupabaseCliError(RuntimeError):
    """The Supabase CLI exited non-zero; the message carries what it printed."""


def supabase(
    *args: str, workdir: Path = ROOT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the pinned Supabase CLI on the project in `workdir` (its `supabase/` folder)."""
    proc = subprocess.run(
        ["bash", str(SUPABASE_CLI), *args, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise SupabaseCliError(
            f"supabase {' '.join(args[:2])} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def db_push(dbname: str, workdir: Path = ROOT) -> list[str]:
    """`supabase db push --include-all --yes` into `dbname`; the versions it applied, in order."""
    args = ["db", "push", "--db-url", cli_url(dbname), "--include-all", "--yes"]
    out = _json(supabase(*args, "--output-format", "json", workdir=workdir))
    return [name.split("_", 1)[0] for name in out["migrations"]]


def migration_list(dbname: str, workdir: Path = ROOT) -> list[tuple[str, str]]:
    """`supabase migration list`: (local, remote) version pairs, "" where one side lacks it."""
    args = ["migration", "list", "--db-url", cli_url(dbname)]
    out = _json(supabase(*args, "--output-format", "json", workdir=workdir))
    return [(m["local"], m["remote"]) for m in out["migrations"]]


class LocalStackError(RuntimeError):
    """scripts/pg.sh could not start the cluster; it has said why on stderr (e.g. port in use)."""


def start_cluster() -> None:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), "start"], check=False)
    if proc.returncode != 0:
        raise LocalStackError(
            f"scripts/pg.sh start failed (exit {proc.returncode}): see the [pg] lines above"
        )


def bootstrap(dbname: str) -> None:
    with psycopg.connect(admin_dsn(dbname), autocommit=True) as conn:
        conn.execute(BOOTSTRAP.read_text())


def create_database(name: str, template: str | None = None) -> None:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        if template:
            conn.execute(f'create database "{name}" template "{template}"')
        else:
            conn.execute(f'create database "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        # Logical slots (the Realtime stand-in's) pin a database; drop any left behind.
        conn.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots"
            " where database = %s and not active",
            (name,),
        )
        conn.execute(f'drop database if exists "{name}" with (force)')


@dataclass
class TemplateDB:
    name: str

    def clone(self) -> str:
        name = f"chirpbase_t{os.getpid()}_{next(_counter)}"
        create_database(name, template=self.name)
        return name


def build_template() -> TemplateDB:
    name = f"chirpbase_tpl_{os.getpid()}"
    drop_database(name)
    create_database(name)
    bootstrap(name)
    db_push(name)
    return TemplateDB(name)


def ensure_cron_database() -> str:
    """The database pg_cron runs in (`postgres`), bootstrapped and migrated."""
    bootstrap("postgres")
    # Re-apply all (they are idempotent): a long-lived local database keeps up with edits.
    migrate(app_dsn("postgres"), reapply=True)
    return "postgres"
