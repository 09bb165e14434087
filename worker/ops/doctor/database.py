"""The database, migrations and pg_cron checks: one synchronous connection, in a thread."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from worker.ops.doctor.model import (
    AUTOMATED_LABEL,
    BUCKET,
    FIX_CRON_JOBS,
    FIX_CRON_MISSING_EXT,
    FIX_DB,
    FIX_MIGRATIONS,
    FIX_X_ACCESS,
    Check,
)


def expected_cron_jobs(schedule: dict[str, Any] | None) -> list[str]:
    """The chirpbase-* pg_cron jobs `public.sync_schedules()` creates for a `schedule` config."""
    names = ["chirpbase-poll-mentions", "chirpbase-collect-stats", "chirpbase-reap-leases"]
    names.append("chirpbase-prune")
    if (schedule or {}).get("enabled", True) is not False:
        names.insert(0, "chirpbase-generate")
    return names


@dataclass
class _DbFacts:
    database: Check
    migrations: Check
    pg_cron: Check
    bucket_public: bool | None = None  # None: no row (or unknown)
    bucket_known: bool = False
    published: set[str] | None = None
    x_access: Check | None = None


def _db_checks(dsn: str, timeout: float) -> _DbFacts:
    from worker.migrate import pending

    t0 = time.monotonic()
    skip = "skipped: the database is unreachable"
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, math.ceil(timeout)),
            application_name="chirpbase-doctor",
        )
    except psycopg.Error as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return _DbFacts(
            Check("database", "fail", f"cannot connect: {text}", FIX_DB, time.monotonic() - t0),
            Check("migrations", "skip", skip, FIX_DB),
            Check("pg_cron", "skip", skip, FIX_DB),
        )
    with conn:
        conn.execute(f"set statement_timeout = {int(timeout * 1000)}")
        row = conn.execute(
            "select current_database(), current_user, current_setting('server_version')"
        ).fetchone()
        assert row is not None
        dbname, user, version = row
        database = Check(
            "database",
            "ok",
            f"connected to {dbname} as {user} (PostgreSQL {version})",
            None,
            time.monotonic() - t0,
        )
        # migrations
        t1 = time.monotonic()
        try:
            todo = pending(conn)
        except psycopg.Error as exc:
            migrations = Check(
                "migrations", "fail", f"cannot read the migration history: {exc}", FIX_MIGRATIONS
            )
        else:
            if todo:
                names = ", ".join(f"{m.version}_{m.name}" for m in todo[:5])
                more = f" and {len(todo) - 5} more" if len(todo) > 5 else ""
                migrations = Check(
                    "migrations",
                    "fail",
                    f"{len(todo)} pending: {names}{more}",
                    FIX_MIGRATIONS,
                )
            else:
                from worker.migrate import discover

                migrations = Check("migrations", "ok", f"all {len(discover())} applied", None)
        migrations.seconds = time.monotonic() - t1
        # pg_cron
        t2 = time.monotonic()
        try:
            pg_cron = _cron_check(conn, dbname)
        except psycopg.Error as exc:
            pg_cron = Check("pg_cron", "fail", f"cannot inspect pg_cron: {exc}", FIX_CRON_JOBS)
        pg_cron.seconds = time.monotonic() - t2
        facts = _DbFacts(database, migrations, pg_cron)
        t3 = time.monotonic()
        try:
            facts.x_access = _access_check(conn)
        except psycopg.Error as exc:
            facts.x_access = Check(
                "x_access", "fail", f"cannot read the access tier: {exc}", FIX_MIGRATIONS
            )
        facts.x_access.seconds = time.monotonic() - t3
        # what the Realtime and Storage checks can add
        with contextlib.suppress(psycopg.Error):
            brow = conn.execute(
                "select public from storage.buckets where id = %s", (BUCKET,)
            ).fetchone()
            facts.bucket_known = True
            facts.bucket_public = None if brow is None else bool(brow[0])
        with contextlib.suppress(psycopg.Error):
            facts.published = {
                r[0]
                for r in conn.execute(
                    "select tablename from pg_publication_tables"
                    " where pubname = 'supabase_realtime' and schemaname = 'public'"
                )
            }
        return facts


def _access_check(conn: psycopg.Connection) -> Check:
    """What the configured X access tier (configs.quotas.plan) allows, from x_capabilities;
    failed when X refused a capability the tier should have (a pause). Always reminds of X's
    rules for automated accounts."""
    tier_row = conn.execute("select public.x_access_tier()").fetchone()
    tier = tier_row[0] if tier_row else "?"
    rows = conn.execute(
        "select c.label, public.x_tier_allows(c.capability), p.reason"
        " from public.x_capabilities c"
        " left join public.x_capability_pauses p on p.capability = c.capability"
        " order by c.capability"
    ).fetchall()
    allowed = [label for label, ok, paused in rows if ok and not paused]
    denied = [label for label, ok, paused in rows if not ok]
    paused = [(label, reason) for label, ok, reason in rows if ok and reason]
    detail = f"tier {tier}: " + ", ".join(allowed)
    if denied:
        detail += "; not on this tier: " + ", ".join(denied)
    detail += f". {AUTOMATED_LABEL}"
    if paused:
        refused = "; ".join(f"{label} ({reason})" for label, reason in paused)
        return Check("x_access", "fail", f"X refused {refused} although {detail}", FIX_X_ACCESS)
    return Check("x_access", "ok", detail, None)


def _cron_database(conn: psycopg.Connection) -> str | None:
    """The database pg_cron runs in, when this role may know (the setting is superuser-only;
    the launcher's row in pg_stat_activity needs pg_read_all_stats)."""
    for sql in (
        "select current_setting('cron.database_name', true)",
        "select datname from pg_stat_activity where backend_type = 'pg_cron launcher' limit 1",
    ):
        try:
            row = conn.execute(sql).fetchone()
        except psycopg.Error:
            continue
        if row and row[0]:
            return str(row[0])
    return None


def _cron_check(conn: psycopg.Connection, dbname: str) -> Check:
    has_schema = conn.execute("select to_regclass('cron.job') is not null").fetchone()
    if not (has_schema and has_schema[0]):
        cron_db_name = _cron_database(conn)
        if cron_db_name and cron_db_name != dbname:
            return Check(
                "pg_cron",
                "fail",
                f"pg_cron lives in database {cron_db_name!r}, not in {dbname!r}: chirpbase's "
                "schedules can only run there",
                f"point DATABASE_URL at database {cron_db_name!r} (on Supabase: `postgres`) and "
                f"migrate it, or set cron.database_name = {dbname!r} and restart Postgres",
            )
        available = conn.execute(
            "select count(*) from pg_available_extensions where name = 'pg_cron'"
        ).fetchone()
        if available and available[0]:
            return Check(
                "pg_cron",
                "fail",
                f"pg_cron is not enabled in database {dbname!r} (it runs in one database per "
                "server, `postgres` on Supabase, and may live in another one)",
                FIX_CRON_MISSING_EXT,
            )
        return Check(
            "pg_cron", "fail", "pg_cron is not available on this server", FIX_CRON_MISSING_EXT
        )
    try:
        rows = conn.execute(
            "select jobname, active, database from cron.job where jobname like 'chirpbase-%'"
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return Check(
            "pg_cron",
            "fail",
            "cannot read cron.job as this role",
            "connect as the role that ran the migrations (on Supabase: postgres)",
        )
    sched = conn.execute("select value from public.configs where key = 'schedule'").fetchone()
    expected = expected_cron_jobs(sched[0] if sched else None)
    found = {r[0]: (bool(r[1]), r[2]) for r in rows}
    missing = [n for n in expected if n not in found]
    inactive = [n for n, (active, _) in found.items() if not active]
    elsewhere = sorted({db for _, db in found.values() if db and db != dbname})
    if missing:
        return Check("pg_cron", "fail", "missing " + ", ".join(missing), FIX_CRON_JOBS)
    if inactive:
        return Check(
            "pg_cron",
            "fail",
            "inactive " + ", ".join(sorted(inactive)),
            "activate them: `update cron.job set active = true where jobname like 'chirpbase-%';`",
        )
    if elsewhere:
        return Check(
            "pg_cron",
            "fail",
            f"the chirpbase-* jobs run in database {', '.join(elsewhere)}, not {dbname!r}",
            "point DATABASE_URL at the database the schedules run in, or re-create them there "
            "with `select public.sync_schedules();`",
        )
    return Check("pg_cron", "ok", f"{len(expected)} chirpbase-* schedules in {dbname}", None)
