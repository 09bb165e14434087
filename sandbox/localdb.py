"""The local PostgreSQL stack: one cluster, migrated template databases, clones, the cron database.

`scripts/pg.sh start` installs and starts PostgreSQL 15 + pg_cron + wal2json when needed. Each
pytest process builds its own template database (bootstrap + migrations) and clones it for every
test, so tests run in any order and several pytest processes can share the cluster.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from worker.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("CHIRPBASE_PG_PORT", "54329"))
BOOTSTRAP = ROOT / "scripts" / "bootstrap.sql"
_counter = itertools.count()


def admin_dsn(dbname: str = "postgres") -> str:
    """Superuser (supabase_admin) connection string."""
    return f"postgresql://supabase_admin@{HOST}:{PORT}/{dbname}"


def app_dsn(dbname: str) -> str:
    """The worker's connection string: the non-superuser `postgres` role, as on Supabase."""
    return f"postgresql://postgres:postgres@{HOST}:{PORT}/{dbname}"


def start_cluster() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), "start"], check=True)


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
    migrate(app_dsn(name))
    return TemplateDB(name)


def ensure_cron_database() -> str:
    """The database pg_cron runs in (`postgres`), bootstrapped and migrated."""
    bootstrap("postgres")
    # Re-apply all (they are idempotent): a long-lived local database keeps up with edits.
    migrate(app_dsn("postgres"), reapply=True)
    return "postgres"
