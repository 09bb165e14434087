"""`chirpbase doctor`: is everything the worker needs in place? One line per check, with the fix.

Checks, in order (each time-boxed; independent ones run concurrently):

    env         Settings load from the environment / .env (names of what is missing, never values)
    database    DATABASE_URL answers
    migrations  every supabase/migrations file is applied (worker.migrate.pending)
    pg_cron     the chirpbase-* schedules exist in cron.job (and pg_cron runs in this database)
    realtime    a Realtime channel on public.jobs reaches SUBSCRIBED (and the table is published)
    storage     the `generated-images` bucket exists and is public
    x           the X credentials work (GET /2/users/me)
    openai      the OpenAI key works (a moderation call: free, generates nothing)

`run_doctor()` returns the results; the CLI prints them (or JSON) and exits 0 only when all pass.
docs/troubleshooting.md explains every failure and its fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg
from pydantic import SecretStr, ValidationError

from worker.logs import redact

__all__ = [
    "BUCKET",
    "CHECKS",
    "Check",
    "DoctorReport",
    "expected_cron_jobs",
    "realtime_probe",
    "run_doctor",
]

BUCKET = "generated-images"
CHECKS = ("env", "database", "migrations", "pg_cron", "realtime", "storage", "x", "openai")
TITLES = {
    "env": "environment",
    "database": "database",
    "migrations": "migrations",
    "pg_cron": "pg_cron schedules",
    "realtime": "Realtime",
    "storage": "Storage bucket",
    "x": "X credentials",
    "openai": "OpenAI key",
}
Status = Literal["ok", "fail", "skip"]

FIX_ENV = (
    "set them in the environment or .env (see .env.example), then run `chirpbase doctor` again"
)
FIX_DB = (
    "check DATABASE_URL (host, port, user, password, database); on Supabase use the direct "
    "connection or the session pooler (port 5432), not the transaction pooler (6543), and allow "
    "this host under Database → Network restrictions"
)
FIX_MIGRATIONS = "apply them: `supabase db push` (or `chirpbase db migrate`)"
FIX_CRON_MISSING_EXT = (
    "enable pg_cron (Supabase dashboard → Database → Extensions → pg_cron), then create the "
    "schedules: `select public.sync_schedules();`"
)
FIX_CRON_JOBS = (
    "create them: `select public.sync_schedules();` (as the role that ran the migrations)"
)
FIX_REALTIME = (
    "check SUPABASE_URL and SUPABASE_KEY (the service-role key) and that Realtime is enabled for "
    "the project; the worker still runs without it, polling every POLL_INTERVAL_S"
)
FIX_REALTIME_PUBLICATION = (
    "add the tables to the publication: `alter publication supabase_realtime add table "
    "public.jobs, public.configs;` (the migrations do this: `supabase db push`)"
)
FIX_BUCKET_MISSING = (
    "create it: `insert into storage.buckets (id, name, public) values ('generated-images', "
    "'generated-images', true) on conflict (id) do update set public = true;` "
    "(or `supabase db push`)"
)
FIX_BUCKET_PRIVATE = (
    "make it public (X fetches images by URL): `update storage.buckets set public = true "
    "where id = 'generated-images';`"
)
FIX_STORAGE_API = "check SUPABASE_URL and SUPABASE_KEY (the service-role key)"
FIX_X_AUTH = (
    "X rejected the credentials: check X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and "
    "X_ACCESS_TOKEN_SECRET (developer portal → your app → Keys and tokens; the app needs Read "
    "and Write permission, and the access token must be regenerated after changing it)"
)
FIX_X_NETWORK = "cannot reach the X API: check network access and X_API_BASE_URL (if set)"
FIX_X_RATE = "X rate-limited or capped the call: wait for the reset (see `chirpbase status`)"
FIX_OPENAI_AUTH = (
    "OpenAI rejected OPENAI_API_KEY: create a key at https://platform.openai.com/api-keys "
    "(and check OPENAI_BASE_URL, if set)"
)
FIX_OPENAI_QUOTA = "the OpenAI account is out of credit: add billing or raise its limit"
FIX_OPENAI_NETWORK = "cannot reach OpenAI: check network access and OPENAI_BASE_URL (if set)"
FIX_TIMEOUT = "it did not answer within {timeout:g}s: check the network path to it"


@dataclass
class Check:
    """One check's outcome."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def get(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{**asdict(c), "ok": c.ok, "title": c.title} for c in self.checks],
        }


class _Fail(Exception):
    """A failed check: `detail` and `fix`."""

    def __init__(self, detail: str, fix: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


# ------------------------------------------------------------------------------------------------
# env
# ------------------------------------------------------------------------------------------------


def check_env(settings_factory: Callable[[], Any]) -> tuple[Check, Any]:
    """Load Settings; report the names of missing, empty or invalid variables (never values)."""
    started = time.monotonic()
    try:
        settings = settings_factory()
    except ValidationError as exc:
        missing, invalid = [], []
        for e in exc.errors():
            name = ".".join(str(p) for p in e["loc"]).upper()
            if e["type"] == "missing":
                missing.append(name)
            else:
                invalid.append(f"{name} ({e['msg']})")
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if invalid:
            parts.append("invalid " + ", ".join(invalid))
        return Check("env", "fail", "; ".join(parts), FIX_ENV, time.monotonic() - started), None
    empty = [
        name.upper()
        for name, value in settings
        if isinstance(value, SecretStr) and not value.get_secret_value().strip()
    ]
    if empty:
        return (
            Check("env", "fail", "empty " + ", ".join(empty), FIX_ENV, time.monotonic() - started),
            settings,
        )
    detail = f"settings load (ENVIRONMENT={settings.environment})"
    return Check("env", "ok", detail, None, time.monotonic() - started), settings


# ------------------------------------------------------------------------------------------------
# database, migrations, pg_cron (one synchronous connection, in a thread)
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Realtime
# ------------------------------------------------------------------------------------------------


async def realtime_probe(url: str, key: str, limit: float) -> str:
    """Subscribe to INSERTs on public.jobs and wait for SUBSCRIBED; returns a description.

    A one-shot version of worker/runtime/doorbell.py's session (same client options: no
    reconnects of its own). Raises `_Fail` with the reason otherwise.
    """
    from realtime import RealtimeSubscribeStates
    from realtime.types import RealtimePostgresChangesListenEvent as PgEvent

    from supabase import AsyncClientOptions, acreate_client

    states: asyncio.Queue[tuple[Any, Exception | None]] = asyncio.Queue()

    def on_state(state: Any, error: Exception | None) -> None:
        states.put_nowait((state, error))

    options = AsyncClientOptions(
        auto_refresh_token=False,
        persist_session=False,
        realtime={"auto_reconnect": False, "max_retries": 1},
    )
    started = time.monotonic()
    client = await acreate_client(url, key, options=options)
    try:
        channel = client.channel("chirpbase-doctor")
        channel.on_postgres_changes(PgEvent.Insert, lambda _p: None, table="jobs", schema="public")
        await asyncio.wait_for(channel.subscribe(on_state), limit)
        left = max(0.1, limit - (time.monotonic() - started))
        state, error = await asyncio.wait_for(states.get(), left)
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            reason = f": {error}" if error else ""
            raise _Fail(f"channel ended {state.value}{reason}", FIX_REALTIME)
        return f"subscribed to public.jobs in {1000 * (time.monotonic() - started):.0f} ms"
    finally:
        rt = client.realtime
        with contextlib.suppress(Exception):
            if rt.is_connected:
                await asyncio.wait_for(rt.remove_all_channels(), 2.0)
            await asyncio.wait_for(rt.close(), 2.0)
        with contextlib.suppress(Exception):
            await client.auth.close()


# ------------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------------


@dataclass
class _BucketApi:
    public: bool | None = None
    not_found: bool = False
    error: str | None = None


async def _storage_api(settings: Any, limit: float) -> _BucketApi:
    """The bucket as the Storage API sees it (GET /storage/v1/bucket/generated-images)."""
    import httpx

    from supabase import AsyncClientOptions, acreate_client

    out = _BucketApi()
    http = httpx.AsyncClient(timeout=httpx.Timeout(limit), follow_redirects=True)
    try:
        client = await acreate_client(
            settings.supabase_url,
            settings.supabase_key.get_secret_value(),
            AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False),
        )
        try:
            bucket = await client.storage.get_bucket(BUCKET)
            out.public = bool(getattr(bucket, "public", False))
        except Exception as exc:
            status = str(getattr(exc, "status", "") or getattr(exc, "statusCode", "") or "")
            text = str(getattr(exc, "message", "") or exc)
            out.not_found = status in ("404", "400") and "not found" in text.lower()
            out.error = f"{type(exc).__name__}: {text}" + (f" (HTTP {status})" if status else "")
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        await http.aclose()
    return out


def _storage_verdict(api: _BucketApi, facts: _DbFacts | None) -> Check:
    sql_public = facts.bucket_public if facts is not None and facts.bucket_known else None
    sql_missing = facts is not None and facts.bucket_known and facts.bucket_public is None
    if api.public is True:
        return Check("storage", "ok", f"bucket {BUCKET} exists and is public")
    if api.public is False or sql_public is False:
        raise _Fail(f"bucket {BUCKET} exists but is not public", FIX_BUCKET_PRIVATE)
    if api.not_found or sql_missing:
        raise _Fail(f"bucket {BUCKET} does not exist", FIX_BUCKET_MISSING)
    extra = (
        " (the bucket row exists in storage.buckets, so the Storage API is what fails)"
        if sql_public is True
        else ""
    )
    raise _Fail(f"Storage API error: {api.error}{extra}", FIX_STORAGE_API)


# ------------------------------------------------------------------------------------------------
# X and OpenAI
# ------------------------------------------------------------------------------------------------


async def _x_check(settings: Any, limit: float) -> Check:
    from worker.clients.x import (
        XAuthError,
        XClient,
        XError,
        XNetworkError,
        XRateLimited,
        XUsageCapped,
    )

    try:
        client = XClient.from_settings(
            settings,
            timeout=limit,
            connect_timeout=min(5.0, limit),
            read_attempts=1,
            max_workers=1,
        )
    except ValueError as exc:
        raise _Fail(str(exc), FIX_ENV) from None
    try:
        me = await client.me()
    except XAuthError as exc:
        raise _Fail(f"GET /2/users/me refused: {exc}", FIX_X_AUTH) from None
    except (XRateLimited, XUsageCapped) as exc:
        raise _Fail(f"GET /2/users/me: {exc}", FIX_X_RATE) from None
    except XNetworkError as exc:
        raise _Fail(f"GET /2/users/me: {exc}", FIX_X_NETWORK) from None
    except XError as exc:
        raise _Fail(f"GET /2/users/me failed: {exc}", FIX_X_NETWORK) from None
    finally:
        await client.aclose()
    return Check("x", "ok", f"authenticated as @{me.username} (id {me.id})")


async def _openai_check(settings: Any, limit: float) -> Check:
    from worker.clients.ai import (
        AIAuthError,
        AIClient,
        AIError,
        AIQuotaExhausted,
        AIUnavailable,
        RetryPolicy,
    )

    policy = RetryPolicy(max_attempts=1, request_timeout=limit, connect_timeout=min(5.0, limit))
    try:
        client = AIClient.from_settings(settings, retry=policy)
    except ValueError as exc:
        raise _Fail(str(exc), FIX_ENV) from None
    try:
        result = await client.moderate("chirpbase doctor: checking the API key")
    except AIAuthError as exc:
        raise _Fail(str(exc), FIX_OPENAI_AUTH) from None
    except AIQuotaExhausted as exc:
        raise _Fail(str(exc), FIX_OPENAI_QUOTA) from None
    except AIUnavailable as exc:
        raise _Fail(str(exc), FIX_OPENAI_NETWORK) from None
    except AIError as exc:
        raise _Fail(str(exc), FIX_OPENAI_NETWORK) from None
    finally:
        await client.aclose()
    return Check("openai", "ok", f"key accepted (moderation with {result.model}, no charge)")


# ------------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------------


async def _boxed(
    name: str, make: Callable[[], Awaitable[Check]], limit: float, secrets: list[str]
) -> Check:
    """Run one check within `limit` seconds; failures become a failed Check (never an exception)."""
    started = time.monotonic()
    try:
        check = await asyncio.wait_for(make(), limit)
    except TimeoutError:
        check = Check(
            name, "fail", f"no answer within {limit:g}s", FIX_TIMEOUT.format(timeout=limit)
        )
    except _Fail as exc:
        check = Check(name, "fail", exc.detail, exc.fix)
    except Exception as exc:
        fixes = {
            "realtime": FIX_REALTIME,
            "storage": FIX_STORAGE_API,
            "x": FIX_X_NETWORK,
            "openai": FIX_OPENAI_NETWORK,
        }
        text = str(exc).strip()
        check = Check(
            name,
            "fail",
            f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
            fixes.get(name),
        )
    check.seconds = time.monotonic() - started
    if not check.ok:  # error texts come from libraries: scrub them (our own texts hold no secret)
        check.detail = _scrub(check.detail, secrets)
    return check


def _scrub(text: str, secrets: list[str]) -> str:
    text = redact(" ".join(text.split()))
    for s in secrets:
        if s and s in text:
            text = text.replace(s, "[REDACTED]")
    return text


async def run_doctor(
    settings_factory: Callable[[], Any] | None = None, *, limit: float = 10.0
) -> DoctorReport:
    """Run every check; each one is bounded by `limit` seconds."""
    if settings_factory is None:
        from worker.settings import Settings

        settings_factory = Settings  # type: ignore[assignment]  # reads the environment and .env
    assert settings_factory is not None
    for noisy in ("realtime", "websockets", "httpx", "httpcore", "tweepy", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    env, settings = check_env(settings_factory)
    if settings is None:
        skipped = [
            Check(name, "skip", "skipped: fix the environment first", FIX_ENV)
            for name in CHECKS[1:]
        ]
        return DoctorReport([env, *skipped])

    secrets = list(settings.secret_values())
    dsn = settings.database_url.get_secret_value()

    async def db_part() -> _DbFacts:
        try:
            return await asyncio.wait_for(asyncio.to_thread(_db_checks, dsn, limit), 2 * limit + 5)
        except Exception as exc:
            text = (
                f"no answer within {2 * limit + 5:g}s"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"
            )
            return _DbFacts(
                Check("database", "fail", text, FIX_DB),
                Check("migrations", "skip", "skipped: the database check failed", FIX_DB),
                Check("pg_cron", "skip", "skipped: the database check failed", FIX_DB),
            )

    db_task = asyncio.create_task(db_part())

    async def realtime() -> Check:
        key = settings.supabase_key.get_secret_value()
        detail = await asyncio.wait_for(realtime_probe(settings.supabase_url, key, limit), limit)
        facts = await asyncio.shield(db_task)  # bounded on its own
        if facts.published is not None and "jobs" not in facts.published:
            raise _Fail(
                "subscribed, but public.jobs is not in the supabase_realtime publication: "
                "no event would ever arrive",
                FIX_REALTIME_PUBLICATION,
            )
        return Check("realtime", "ok", detail)

    async def storage() -> Check:
        api = await asyncio.wait_for(_storage_api(settings, limit), limit)
        return _storage_verdict(api, await asyncio.shield(db_task))

    outer = 2 * limit + 5  # the network part has `limit`; the rest waits for SQL facts
    results = await asyncio.gather(
        _boxed("realtime", realtime, outer, secrets),
        _boxed("storage", storage, outer, secrets),
        _boxed("x", lambda: _x_check(settings, limit), limit, secrets),
        _boxed("openai", lambda: _openai_check(settings, limit), limit, secrets),
    )
    facts = await db_task
    db_checks = [facts.database, facts.migrations, facts.pg_cron]
    for c in db_checks:
        if not c.ok:
            c.detail = _scrub(c.detail, secrets)
    return DoctorReport([env, *db_checks, *results])
